"""gadm-airflow: load GADM administrative boundaries into PostGIS.

The pipeline's stages are the module names, in order:

    source -> layout -> preprocess (one module per engine) -> sink -> link
    -> verify -> publish -> report

`synth` generates GADM-shaped sample data; `schema` holds GADM 4.1's shape;
`settings`, `metrics`, `keys` and `errors` are shared by every stage.
"""
