"""The config machinery below the tasks: where the config groups are (``paths``), the closed registry that builds
``_target_`` specs and maps old paths to new ones (``specs``), and the config resolvers and optional extras
(``resolvers``)."""
