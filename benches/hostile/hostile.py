#!/usr/bin/env python3
"""Hostile documents against the release binary over stdio: probe latency after didOpen,
debugDocument (twice: a refused parse is cached), the first diagnostics of a one-line document, and resident memory before, after
didOpen and after didClose (issue 17). Usage: hostile.py BINARY KIND SIZE, where KIND is
rust|text (SIZE in MB), line (SIZE in MB, one line of SQL-formatting functions), fmt|vec
(SIZE = nesting levels). Reads /proc, so Linux only; talks to the binary over pipes only."""
import json, subprocess, sys, time, os
binary = sys.argv[1]
kind = sys.argv[2]  # rust or text
mb = int(sys.argv[3])
p = subprocess.Popen([binary, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "CONDUCTOR_LOG": "warn"})
def send(msg):
    b = json.dumps(msg).encode()
    p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(b) + b); p.stdin.flush()
def read():
    h = b""
    while not h.endswith(b"\r\n\r\n"):
        c = p.stdout.read(1)
        if not c: return None
        h += c
    n = int([l for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
    return json.loads(p.stdout.read(n))
def request(i, method, params):
    send({"jsonrpc":"2.0","id":i,"method":method,"params":params})
    t = time.time()
    while True:
        m = read()
        if m is None: return None, time.time()-t
        if m.get("id") == i and "method" not in m: return m, time.time()-t
        if "method" in m and "id" in m:
            send({"jsonrpc":"2.0","id":m["id"],"result":None})
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])//1024
def cpu():
    f = open(f"/proc/{p.pid}/stat").read().split(")")[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK")
request(1, "initialize", {"processId": None, "capabilities": {}, "rootUri": None})
send({"jsonrpc":"2.0","method":"initialized","params":{}})
time.sleep(0.5)
cold = rss()
# A small document with a finding, opened and closed first: the rules' compiled queries and other
# state built once per process are then in the baseline, so what stays after the big document's
# close is what it left behind.
warm_uri = "file:///tmp/h17warm.rs"
send({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":warm_uri,"languageId":"rust","version":1,"text":'fn a(y: String){let q=format!("SELECT * FROM t WHERE x={}",y);db.execute(&q);}\n'}}})
while True:
    m = read()
    if m and m.get("method") == "textDocument/publishDiagnostics" and m["params"]["diagnostics"]:
        break
send({"jsonrpc":"2.0","method":"textDocument/didClose","params":{"textDocument":{"uri":warm_uri}}})
time.sleep(3)
base = rss()
if kind == "fmt":
    text = "fn h(x: String) { let q = " + 'format!("{}", '*mb + "x" + ")"*mb + "; conn.execute(&q, []); }\n"
elif kind == "vec":
    text = "type T = " + "Vec<"*mb + "u8" + ">"*mb + ";\n"
elif kind == "line":
    u = 'fn a(y: String){let q=format!("SELECT * FROM t WHERE x={}",y);db.execute(&q);} '
    text = u * (mb * 1024 * 1024 // len(u))
unit = "fn f(x: u32) -> u32 { let y = x + 1; y * 2 }\n" if kind == "rust" else "plain text line of words\n"
if kind in ("rust", "text"): text = unit * (mb * 1024 * 1024 // len(unit))
uri = "file:///tmp/h17big." + ("txt" if kind == "text" else "rs")
t0 = time.time()
send({"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":uri,"languageId":"plaintext" if kind=="text" else "rust","version":1,"text":text}}})
r, dt = request(2, "conductor/noSuchMethod", {})
print(f"{kind} {mb} MB: probe after didOpen answered in {time.time()-t0:.2f} s (code {r and r.get('error',{}).get('code')})")
if kind == "line":
    t1 = time.time()
    while True:
        m = read()
        if m and m.get("method") == "textDocument/publishDiagnostics" and m["params"]["diagnostics"]:
            print(f"  {len(m['params']['diagnostics'])} diagnostics published {time.time()-t1:.2f} s after the probe, server CPU so far {cpu():.2f} s")
            break
r, dt = request(5, "conductor/debugDocument", {"textDocument": {"uri": uri}})
print(f"  debugDocument answered in {dt:.2f} s, tree {'none: ' + str(r['result'].get('noTree')) if r['result']['tree'] is None else str(len(r['result']['tree'])) + ' bytes'}")
r, dt = request(6, "conductor/debugDocument", {"textDocument": {"uri": uri}})
print(f"  debugDocument again answered in {dt:.2f} s")
time.sleep(3)
print(f"  RSS at start {cold} MB, before open (rules compiled) {base} MB, 3 s after open {rss()} MB, CPU so far {cpu():.1f} s")
send({"jsonrpc":"2.0","method":"textDocument/didClose","params":{"textDocument":{"uri":uri}}})
time.sleep(3)
r, dt = request(3, "conductor/noSuchMethod", {})
print(f"  RSS 3 s after didClose {rss()} MB (probe {dt*1000:.0f} ms), CPU {cpu():.1f} s")
request(4, "shutdown", None); send({"jsonrpc":"2.0","method":"exit"})
p.wait(timeout=5)
