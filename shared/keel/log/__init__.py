"""The event log: a port and one adapter per backend."""

from keel.log.port import EventLog, LogRecord, OutgoingEvent, Subscription, TopicPartition

__all__ = ["EventLog", "LogRecord", "OutgoingEvent", "Subscription", "TopicPartition"]
