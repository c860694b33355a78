"""Which loads a data table accepts: the mode, key and template it was created with."""

from __future__ import annotations

import pytest

from egress.domain.data_tables import APPEND, UPSERT, Loading, loading_conflict

BY_ID = Loading(UPSERT, ["id"], "t1", "main.orders")


def test_the_same_loading_is_accepted() -> None:
    assert loading_conflict("orders", BY_ID, Loading(UPSERT, ["id"], "t1", "main.orders")) is None
    log = Loading(APPEND, [], "t1", "main.orders")
    assert loading_conflict("orders", log, log) is None


@pytest.mark.parametrize(
    ("wanted", "described"),
    [
        (Loading(APPEND, [], "t1", "main.orders"), "by append from template 'main.orders'"),
        (Loading(UPSERT, ["code"], "t1", "main.orders"), "by upsert on (code) from"),
        (Loading(UPSERT, ["id", "day"], "t1", "main.orders"), "by upsert on (id, day) from"),
        (Loading(UPSERT, ["id"], "t2", "orders_v2"), "by upsert on (id) from template 'orders_v2'"),
    ],
)
def test_another_mode_key_or_template_is_refused(wanted: Loading, described: str) -> None:
    message = loading_conflict("orders", BY_ID, wanted)
    assert message is not None
    assert message.startswith(
        "data table 'orders' was created to be loaded by upsert on (id) from template "
        f"'main.orders'; this configuration would load it {described}"
    )
    assert message.endswith("load into a data table of another name")


def test_a_configuration_defines_the_table_before_its_first_load() -> None:
    message = loading_conflict("orders", BY_ID, Loading(APPEND, [], "t1", "x"), "nightly")
    assert message is not None
    assert message.startswith("configuration 'nightly' loads data table 'orders' by upsert")


def test_a_table_without_a_recorded_template_checks_mode_and_key_only() -> None:
    legacy = Loading(UPSERT, ["id"], None, "")
    assert loading_conflict("orders", legacy, Loading(UPSERT, ["id"], "t9", "any")) is None
    message = loading_conflict("orders", legacy, Loading(APPEND, [], "t9", "any"))
    assert message is not None
    assert message.startswith("data table 'orders' was created to be loaded by upsert on (id);")
