"""The fleet at a glance: which lab holds which version of each ImagePath, how old, how far behind.

``model`` is the pure core (snapshots in, a :class:`~image_factory.fleet.model.Fleet` out); ``snapshot`` builds
the document verify hands over by XCom; ``store`` reads those documents from Airflow's metadata database in the
api-server; ``api`` is the plugin's FastAPI app.
"""
