"""gadm-airflow: load GADM administrative boundaries into PostGIS.

The pipeline's stages are the module names, in order:

    source (+ download) -> layout -> preprocess (one module per engine)
    -> intermediate -> sink (+ pgcopy) -> link -> verify -> publish -> report

Around them: `staging` (per-run staging schemas), `history` (load runs and the
published source identity, in ``<schema>_meta``), `assets` (Airflow Asset URIs
of the published tables), `derived` (the example derived table), `charts`
(benchmark and map pictures), `pipeline` (the DAG's task bodies). Shared by
every stage: `schema` (GADM 4.1's shape), `settings`, `metrics`, `keys`, `db`
and `errors`. `synth` generates GADM-shaped sample data.
"""
