#!/usr/bin/env python3
"""Summarises CPU samples of a JFR recording: samples per thread, hottest frames, inclusive methods.

Usage: bench/jfr-hot.py FILE.jfr [EVENT [THREAD_SUBSTRING [DEPTH]]]
  EVENT             jdk.CPUTimeSample (default; JDK 25 on Linux) or jdk.ExecutionSample
  THREAD_SUBSTRING  only samples of threads whose name contains it
  DEPTH             top frames joined into one "self" key (default 1)
Needs the JDK's jfr tool: $JAVA_HOME/bin/jfr, else the Temurin 25 default.
"""
import collections
import json
import os
import subprocess
import sys


def frame_name(frame):
    method = frame['method']
    return method['type']['name'].split('.')[-1] + '.' + method['name']


def thread_name(values):
    thread = values.get('sampledThread') or values.get('eventThread') or {}
    return thread.get('javaName') or thread.get('osName') or '?'


def main():
    recording = sys.argv[1]
    event = sys.argv[2] if len(sys.argv) > 2 else 'jdk.CPUTimeSample'
    wanted_thread = sys.argv[3] if len(sys.argv) > 3 else ''
    depth = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    jfr = os.path.join(os.environ.get('JAVA_HOME', '/usr/lib/jvm/temurin-25-jdk-amd64'), 'bin', 'jfr')
    printed = subprocess.run([jfr, 'print', '--json', '--stack-depth', '64', '--events', event, recording],
                             capture_output=True, text=True, check=True).stdout
    per_thread = collections.Counter()
    self_frames = collections.Counter()
    inclusive = collections.Counter()
    samples = 0
    for sample in json.loads(printed)['recording']['events']:
        values = sample['values']
        name = thread_name(values)
        # The file engine's I/O threads are numbered; count them as one.
        per_thread['pcache-backing-io' if name.startswith('pcache-backing-io') else name] += 1
        stack = values.get('stackTrace')
        if wanted_thread not in name or not stack:
            continue
        frames = [frame_name(frame) for frame in stack['frames']]
        samples += 1
        self_frames[' < '.join(frames[:depth])] += 1
        inclusive.update(set(frames))
    print('samples per thread:', per_thread.most_common(12))
    print('samples counted:', samples)
    if samples == 0:
        return
    print('--- self (top %d frames)' % depth)
    for key, count in self_frames.most_common(30):
        print('%5d %5.1f%% %s' % (count, 100 * count / samples, key))
    print('--- inclusive')
    for key, count in inclusive.most_common(45):
        print('%5d %5.1f%% %s' % (count, 100 * count / samples, key))


if __name__ == '__main__':
    main()
