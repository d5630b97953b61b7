#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
# ctrl-c.py CMD...: run CMD on a pseudo terminal, wait for its passphrase
# prompt, check that echo is off, press Ctrl-C; then echo must be on again
# and CMD must exit 1 saying the passphrase could not be read (as cryptsetup).
import os, pty, select, sys, termios, time

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

out = b""
def read_until(what, timeout):
    global out
    end = time.monotonic() + timeout
    while what not in out and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data

read_until(b"Enter passphrase", 60)
if b"Enter passphrase" not in out:
    print("no prompt:", out)
    sys.exit(1)
time.sleep(0.2)   # the prompt is printed before echo is turned off
echo_during = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
os.write(fd, b"\x03")
read_until(b"\nnever", 10)
_, status = os.waitpid(pid, 0)
echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
code = os.waitstatus_to_exitcode(status)
ok = not echo_during and echo_after and code == 1 and b"error reading the passphrase" in out
print("echo while prompting: %s, echo after Ctrl-C: %s, exit status %d, output %r" %
      (echo_during, echo_after, code, out))
if ok:
    print("echo restored, exit 1")
sys.exit(0 if ok else 1)
