from egress.cli.main import app

app()
