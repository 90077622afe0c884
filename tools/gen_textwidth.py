#!/usr/bin/env python3
"""gen_textwidth: prints the two code point tables of lib/textwidth.c
(ZERO_WIDTH, WIDE) from this Python's unicodedata; paste them over the old
ones when moving to a newer Unicode (and say which in the file's comment)."""
import unicodedata
def ranges(pred):
    out=[]; start=None
    for cp in range(0x110000):
        ok = pred(cp)
        if ok and start is None: start=cp
        if not ok and start is not None: out.append((start,cp-1)); start=None
    if start is not None: out.append((start,0x10ffff))
    return out
def zero(cp):
    c=chr(cp); cat=unicodedata.category(c)
    if cat in ('Mn','Me'): return True
    if cat=='Cf' and cp!=0xAD: return True
    if 0x1160<=cp<=0x11FF: return True  # Hangul medial vowels, final consonants
    return False
def wide(cp):
    c=chr(cp)
    if zero(cp): return False
    cat=unicodedata.category(c)
    if cat in ('Cn','Cs','Co'):
        # unassigned in planes 2 and 3 are wide by EAW default
        return 0x20000<=cp<=0x2FFFD or 0x30000<=cp<=0x3FFFD
    return unicodedata.east_asian_width(c) in ('W','F')
for name,p in (('ZERO',zero),('WIDE',wide)):
    r=ranges(p)
    print(f"/* {name}: {len(r)} ranges */")
    items=[f"{{0x{a:X}, 0x{b:X}}}" for a,b in r]
    line="   "
    for it in items:
        if len(line)+len(it)+2>112:
            print(line.rstrip()); line="   "
        line+=" "+it+","
    print(line.rstrip())
