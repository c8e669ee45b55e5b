"""Prediction streams: predictions and labels read from a message broker and ingested.

A broker (NATS JetStream today; MQTT or Kafka behind the same ``Source`` later) carries the
bodies the API takes, one batch per message, on ``predictions.<service>`` and
``labels.<service>``. ``messages`` turns a message into records with the API's own decoders,
``consumer`` stores a fetched batch through the ``Ingestor`` and says what to do with each
message (acknowledge, dead-letter, redeliver), ``jetstream`` is the NATS source, and
``heartbeat`` writes each consumer's counters, backlog and lag to the store, where
``/metrics`` and the dashboard read them.
"""
