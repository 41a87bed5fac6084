"""Operating the ingestor: Prometheus metrics, the health verdict, log set-up."""
