"""Lightning pieces shared by pretraining and the downstream tasks: schedules, callbacks, CLI."""
