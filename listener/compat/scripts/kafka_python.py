#!/usr/bin/env python3
"""kafka-python (Debian python3-kafka) against a Kafka-protocol server, defaults.

usage: kafka_python.py ADDR setup|resume|member NAME  (see README.md beside it)
"""
import sys
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import expect, keyed, member_out, parse

addr, phase, name = parse(sys.argv)
topic, group = "compat-" + name, "compat-" + name + "-group"


def produce(recs):
    p = KafkaProducer(bootstrap_servers=addr)
    for k, v in recs:
        p.send(topic, key=k.encode(), value=v.encode())
    p.flush(timeout=60)
    p.close()


def read(consumer, n):
    got = []
    for m in consumer:
        got.append((m.key.decode(), m.value.decode()))
        if len(got) == n:
            break
    return got


if phase == "setup":
    adm = KafkaAdminClient(bootstrap_servers=addr)
    adm.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    adm.close()
    first = keyed(name, 0, 30)
    produce(first)
    c = KafkaConsumer(topic, bootstrap_servers=addr, auto_offset_reset="earliest", consumer_timeout_ms=60000)
    expect("consume from earliest", first, read(c, 30))
    c.close()
    c = KafkaConsumer(topic, group_id=group, bootstrap_servers=addr, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=60000)
    expect("consume in a group", first, read(c, 30))
    c.commit()
    c.close()
elif phase == "resume":
    second = keyed(name, 30, 10)
    produce(second)
    c = KafkaConsumer(topic, group_id=group, bootstrap_servers=addr, enable_auto_commit=False,
                      consumer_timeout_ms=60000)
    expect("resume after a restart", second, read(c, 10))
    c.commit()
    c.close()
elif phase == "member":
    c = KafkaConsumer("compat-mixed-" + name, group_id="compat-mixed-" + name + "-group",
                      bootstrap_servers=addr, auto_offset_reset="earliest")
    for m in c:
        member_out(m.partition, m.key.decode())
