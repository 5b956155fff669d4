"""The composition root, the one place that imports every service: the handler table per
service (wiring.py), the embedded bus (bus.py), the service runner (runner.py), the commands
spanning services (commands.py, retrain.py), the `keel` console script and every command
(cli/), the demo (demo/), and the library's Python API with the services' commands injected
(client.py). The `keel` library never imports, names or discovers this package (decision
0025)."""
