"""EventLog on Apache Kafka: confluent-kafka produces, scans and runs the group members;
aiokafka reads and moves a group's offsets from outside it (decision 0026).

One module per role:
- wire.py: topic names under a prefix (default "keel."), headers, timestamps;
- producer.py: the transactional producer (one transaction per append, acks=all);
- scan.py: end offsets, partition counts and bounded scans on librdkafka (decision 0019);
- member.py: a consumer-group member (subscribe) on librdkafka (decision 0026);
- groups.py: a group's offsets from outside it (commit, committed) on aiokafka;
- routing.py: on a secured broker, each event goes in as its writer's principal;
- schemas_topic.py: the compacted topic of writer schemas;
- arrivals.py: the waker for readers that keep views current;
- eventlog.py: KafkaEventLog, the port assembled from them.
"""

from keel.log.kafka.arrivals import Arrivals
from keel.log.kafka.eventlog import KafkaEventLog
from keel.log.kafka.member import KafkaSubscription
from keel.log.kafka.scan import SCAN_STALL_S
from keel.log.kafka.wire import (
    AVRO_CONTENT_TYPE,
    AVRO_MAGIC,
    DEFAULT_PREFIX,
    SIG_HEADER,
    TIME_HEADER,
    TIMESTAMP_LOG_APPEND_TIME,
    new_prefix,
)

__all__ = [
    "AVRO_CONTENT_TYPE",
    "AVRO_MAGIC",
    "DEFAULT_PREFIX",
    "SCAN_STALL_S",
    "SIG_HEADER",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIME_HEADER",
    "Arrivals",
    "KafkaEventLog",
    "KafkaSubscription",
    "new_prefix",
]
