"""The frontend's own work beside the site: block pipeline, voter pool, repairs, replication, fee caps, preflight."""
