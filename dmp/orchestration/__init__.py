"""The Airflow side: light helpers for the DAGs and the ops commands (``dmp summary``).

Airflow parses DAG files constantly, so nothing here imports pyspark, Great Expectations or
scikit-learn, and nothing does I/O at import time. Import from the modules:

- :mod:`.settings`: ``setting(name)`` (Airflow Variable ``dmp_<name>``, else ``DMP_*`` environment,
  else the default of ``dmp.contracts.settings``) and the DAGs' ``default_args``;
- :mod:`.submit`: ``SparkJob`` and ``run_spark_job`` (spark-submit through the Spark provider);
- :mod:`.planning`: run dates, asset dates, specs / channels, build waves, due evaluations;
- :mod:`.deltaread`: small Delta tables read with delta-rs, no JVM.
"""
