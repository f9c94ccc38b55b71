//! PubSubBus, push delivery and bootstrap against the Pub/Sub emulator.
