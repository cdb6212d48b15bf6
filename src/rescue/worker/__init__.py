"""What runs beside the training, in the run's own process: ``rescue.report`` and its sinks,
``rescue.watch``'s torch hooks, the plain-script runner, and the batches sent to the driver."""
