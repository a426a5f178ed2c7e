-- Run once by the postgres image on an empty volume: the two databases of the dock's cluster.
CREATE DATABASE prefect OWNER lwdock;
CREATE DATABASE mlflow OWNER lwdock;
