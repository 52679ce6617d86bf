"""Publishing: dataset definitions, dataset folders gathered from product runs, and their
records (data-centre JSON, STAC Collection, DataCite XML, schema.org JSON-LD, citations)."""
