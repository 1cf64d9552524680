#!/usr/bin/env python3
"""confluent-kafka's (librdkafka's) transactional producer in an exactly-once
consume-transform-produce loop against a Kafka-protocol server: the inputs
are copied from IN to OUT in transactions that carry the consumer's offsets
(send_offsets_to_transaction with its group metadata); one transaction is
aborted, and the consumer rewound to the committed offsets. A read_committed
consumer must then see every input exactly once in OUT, a read_uncommitted
one the aborted copies as well.

usage: confluent_kafka_eos.py ADDR NAME
"""
import sys
import time
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

if len(sys.argv) != 3:
    sys.exit("usage: %s ADDR NAME" % sys.argv[0])
addr, name = sys.argv[1], sys.argv[2]
src, dst, group = "eos-in-" + name, "eos-out-" + name, "eos-" + name
N = 100
T = 60  # seconds: each call's bound

adm = AdminClient({"bootstrap.servers": addr})
fs = adm.create_topics([NewTopic(src, num_partitions=3, replication_factor=1),
                        NewTopic(dst, num_partitions=2, replication_factor=1)])
for f in fs.values():
    f.result(T)

p = Producer({"bootstrap.servers": addr})
for i in range(N):
    p.produce(src, key=str(i).encode(), value=("v%d" % i).encode())
if p.flush(T) != 0:
    sys.exit("produce inputs: records left unsent")
print("ok inputs", flush=True)

# isolation.level is read_committed by default in librdkafka.
consumer = Consumer({"bootstrap.servers": addr, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False})
consumer.subscribe([src])
txp = Producer({"bootstrap.servers": addr, "transactional.id": "eos-" + name, "transaction.timeout.ms": 30000})
txp.init_transactions(T)
print("ok init_transactions", flush=True)


def committed_total():
    parts = consumer.committed([TopicPartition(src, i) for i in range(3)], T)
    return sum(max(tp.offset, 0) for tp in parts)


def rewind():
    """After an abort: back to the group's committed offsets."""
    for tp in consumer.committed(consumer.assignment(), T):
        tp.offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        consumer.seek(tp)


aborted, transactions, deadline = 0, 0, time.time() + 120
while committed_total() < N:
    if time.time() > deadline:
        sys.exit("copy: only %d of %d inputs committed" % (committed_total(), N))
    msgs = [m for m in consumer.consume(10, 1.0) if m.error() is None]
    if not msgs:
        continue
    txp.begin_transaction()
    for m in msgs:
        txp.produce(dst, key=m.key(), value=m.value())
    txp.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                    consumer.consumer_group_metadata(), T)
    transactions += 1
    if transactions == 2:
        # Delivered first: abort_transaction purges what is still queued,
        # and the aborted records are to be in the log.
        if txp.flush(T) != 0:
            sys.exit("flush before the abort: records left unsent")
        txp.abort_transaction(T)
        aborted += len(msgs)
        rewind()
        print("ok abort of %d records" % len(msgs), flush=True)
        continue
    txp.commit_transaction(T)
print("ok copy in %d transactions" % transactions, flush=True)
consumer.close()
if aborted == 0:
    sys.exit("no transaction was aborted")


def read_all(isolation, want):
    """Every value of dst at isolation: polls until want, then 2s more for extras."""
    c = Consumer({"bootstrap.servers": addr, "group.id": group + "-check-" + isolation,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "isolation.level": isolation})
    c.subscribe([dst])
    got, end = [], time.time() + T
    quiet_until = None
    while time.time() < end:
        m = c.poll(0.5)
        if m is None:
            if len(got) >= want:
                quiet_until = quiet_until or time.time() + 2
                if time.time() > quiet_until:
                    break
            continue
        if m.error():
            raise KafkaException(m.error())
        got.append(m.value().decode())
    c.close()
    return got


committed = read_all("read_committed", N)
if sorted(committed) != sorted("v%d" % i for i in range(N)):
    dups = sorted(v for v in set(committed) if committed.count(v) > 1)
    sys.exit("read_committed: %d values, %d distinct, duplicates %s" % (len(committed), len(set(committed)), dups))
print("ok read_committed: every input exactly once", flush=True)
uncommitted = read_all("read_uncommitted", N + aborted)
if len(uncommitted) != N + aborted:
    sys.exit("read_uncommitted: %d values, want %d (with the %d aborted)" % (len(uncommitted), N + aborted, aborted))
print("ok read_uncommitted: the aborted copies too", flush=True)
