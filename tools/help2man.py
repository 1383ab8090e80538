#!/usr/bin/env python3
"""Turns swift-argument-parser's --experimental-dump-help JSON into a man(1) page."""
import json, sys, datetime

def esc(s):
    return s.replace("\\", "\\\\").replace("-", "\\-").replace("\n.", "\n\\&.")

d = json.load(open(sys.argv[1]))["command"]
name = d["commandName"]
print(f'.TH {name.upper()} 1 "{datetime.date.today():%B %Y}" "epipe" "epipe manual"')
print(".SH NAME"); print(f"{esc(name)} \\- {esc(d.get('abstract', ''))}")
args = d.get("arguments", [])
syn = []
for a in args:
    if a.get("shouldDisplay", True) is False: continue
    names = a.get("names", [])
    long = next((n["name"] for n in names if n["kind"] == "long"), None)
    if a["kind"] == "positional": syn.append(f"[{a.get('valueName', 'arg')} ...]")
print(".SH SYNOPSIS"); print(f".B {esc(name)}"); print(esc("[options] " + " ".join(syn)))
print(".SH DESCRIPTION")
for para in d.get("discussion", "").split("\n\n"):
    if para.startswith("  "):
        print(".PP\n.nf"); print(esc(para)); print(".fi")
    else:
        print(".PP"); print(esc(para.strip()))
print(".SH OPTIONS")
for a in args:
    if a.get("shouldDisplay", True) is False: continue
    names = a.get("names", [])
    flags = ", ".join(("-" if n["kind"] == "short" else "--") + n["name"] for n in names)
    if a["kind"] == "positional": flags = a.get("valueName", "ARG")
    elif a["kind"] == "option": flags += " " + a.get("valueName", "value").upper()
    print(".TP"); print(f"\\fB{esc(flags)}\\fR")
    h = a.get("abstract", "")
    if "defaultValue" in a: h += f" (default: {a['defaultValue']})"
    print(esc(h))
print(".SH EXIT STATUS\n0 all done; 1 a job failed (the others still ran); 2 bad usage or bad input.")
if name in ("epipe-ingest", "epipe-denoise", "epipe-segment", "epipe-cluster", "epipe-stats"):
    print("143 or 130: stopped by SIGTERM or SIGINT at a safe point (see SIGNALS in epipe(5)).")
print(".SH SEE ALSO\n.BR epipe (5),\n.BR epipe-ingest (1), epipe-denoise (1), epipe-segment (1), epipe-cluster (1), epipe-stats (1), epipe-status (1)")
