"""The network edges of ussdsim: the SMPP 3.4 codec and session (sans-IO), the Twisted
adapter, routing and store-and-forward, the control HTTP API and the command line.

Only this package imports Twisted; only ``gateway/app.py`` reads the wall clock.
"""
