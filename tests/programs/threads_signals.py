# Threads and signals as an unmodified Python program uses them: alarm, setitimer, kill, 8 threads.
import os
import queue
import signal
import threading
import time

hits = []
signal.signal(signal.SIGALRM, lambda s, f: hits.append(s))
signal.alarm(1)
time.sleep(2)  # interrupted by SIGALRM: Python resumes the sleep after the handler (PEP 475)

q = queue.Queue()


def worker(i):
    s = 0
    for k in range(20000):
        s += k
    q.put((i, s))


ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
res = sorted(q.get() for _ in range(8))

n = 0


def tick(s, f):
    global n
    n += 1


signal.signal(signal.SIGALRM, tick)
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
while n < 5:
    time.sleep(0.01)
signal.setitimer(signal.ITIMER_REAL, 0)

signal.signal(signal.SIGUSR1, lambda s, f: hits.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
lock = threading.Lock()
cond = threading.Condition(lock)
turn = [0]


def pong():
    for _ in range(200):
        with cond:
            while turn[0] != 1:
                cond.wait()
            turn[0] = 0
            cond.notify()


t = threading.Thread(target=pong)
t.start()
for _ in range(200):
    with cond:
        turn[0] = 1
        cond.notify()
        while turn[0] != 0:
            cond.wait()
t.join()
print("handlers", hits, "threads", [r[1] for r in res], "ticks>=5", n >= 5, "pingpong done")
os.kill(os.getpid(), signal.SIGTERM)  # default action: death by SIGTERM, as the parent sees it
