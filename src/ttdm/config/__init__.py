"""The workflow configuration: schema validation with defaults, and the job specs built from it.

`validate_config` checks a config dict against workflow/schemas/config.schema.yaml (whose `x-registry` fields take
their allowed values from ttdm's registries), fills defaults, then checks what a schema cannot: that the grid names
existing datasets and models, that component options are accepted by the component, and that the main-table setting
exists. Every error names the config file, the key's path and the allowed values, and all are reported at once, before
any job starts. The `*_spec` functions turn the validated config and a job's wildcards into the small dict that the
job receives on its command line and saves beside its outputs.
"""

from ttdm.config.grid import (
    block_for,
    expand_grid,
    main_models,
    n_eval,
    runs,
    training_for,
    tt_plan,
    used_datasets,
)
from ttdm.config.methods import LOOP_KEYS, needs_of, resolved_training, settings_for
from ttdm.config.schema import SCHEMA_PATH, ConfigError, load_schema, validate_config
from ttdm.config.specs import (
    bench_spec,
    complexity_spec,
    data_spec,
    eval_spec,
    job_resources,
    load_config,
    main_setting,
    run_settings,
    run_spec,
    sample_spec,
    sampling_keys,
    split_setting,
)
