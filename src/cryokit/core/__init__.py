"""What every product family shares: grids and rasters, vectors, records, quick-looks, cubes,
parallel execution, atomic writes and output rules, dates, errors, robust statistics, terrain."""
