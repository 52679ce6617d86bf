"""Land cover maps: feature stacks, global and locally adaptive classifiers, legends, maps per
region and their accuracy."""
