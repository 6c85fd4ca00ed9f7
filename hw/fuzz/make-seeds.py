#!/usr/bin/python3
"""Write the seed inputs of ./icemu fuzz (hw/fuzz/seeds/<target>/) in generic-fuzz's format.

A generic-fuzz input is a list of commands separated by "FUZZ"; the first byte of a command
is its opcode modulo 10 (QEMU tests/qtest/fuzz/generic_fuzz.c). A DMA read of guest RAM by
the device is answered with the next DMA pattern (one pattern per read, cycling), so a seed
that adds one pattern per read the device will make in order (UTRD, UPIU header, the rest of
the UPIU, PRDT, data) gets exactly those bytes to the device. Without seeds the fuzzer has to
find the whole bring-up (HCE, a keyslot, the list base, a doorbell and four or five
descriptors in the right order) by chance, which a few million executions do not.

The seeds drive the path Linux uses: HCE with CGE, one AES-XTS-256 keyslot programmed,
a WRITE(10) and a READ(10) with CE=1 (the first may see the SCSI unit attention of the reset),
a request naming an unprogrammed keyslot, and one with CE=0.

Usage: make-seeds.py OUTDIR   (writes OUTDIR/<target>/<name>)
"""
import os
import struct
import sys

OP_WRITE, OP_ADD_DMA_PATTERN, OP_CLEAR_DMA_PATTERNS, OP_CLOCK_STEP = 3, 7, 8, 9
SEP = b"FUZZ"
LONG = 2


def op_write(region, offset, value, size=LONG):
    # struct { uint8_t size; uint8_t base; uint32_t offset; uint64_t value; } (x86-64 layout)
    return bytes([OP_WRITE]) + struct.pack("<BBxxIQ", size, region, offset, value)


def op_pattern(data):
    # struct { uint8_t index; uint8_t stride; } + the pattern bytes
    return bytes([OP_ADD_DMA_PATTERN]) + struct.pack("<BB", 0, 0) + data


def op_clear():
    return bytes([OP_CLEAR_DMA_PATTERNS])


def op_step():
    return bytes([OP_CLOCK_STEP])


def join(cmds):
    for c in cmds:
        assert SEP not in c, c
    return SEP.join(cmds)


# UFSHCI registers
HCE, IE, UTRLBA, UTRLBAU, UTRLDBR, UTRLRSR, UICCMD = 0x34, 0x24, 0x50, 0x54, 0x58, 0x60, 0x90
UTRL, UCD, DATA = 0x100000, 0x200000, 0x300000
BLOCK = 4096


def utrd(write, ce, cci, dun, data=True):
    dd = (1 << 25) if write else (2 << 25)
    dw0 = (1 << 28) | (dd if data else 0) | (ce << 23) | cci
    return struct.pack("<IIIIIIHHHH", dw0, dun & 0xFFFFFFFF, 0xF, dun >> 32, UCD, 0,
                       0x20, 0x200 // 4, 1 if data else 0, 0x400 // 4)


def scsi_rw(write, lba, blocks):
    hdr = struct.pack(">BBBBBBBBBBH", 0x01, 0x20 if write else 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    cdb = struct.pack(">BBIBHB", 0x2A if write else 0x28, 0, lba, 0, blocks, 0) + bytes(6)
    return hdr, struct.pack(">I", blocks * BLOCK) + cdb


def prdt(nbytes):
    return struct.pack("<QII", DATA, 0, nbytes - 1)


def request(slot, write, ce, cci, dun, lba=8, blocks=1):
    """Patterns for one request's DMA reads, then its doorbell."""
    hdr, rest = scsi_rw(write, lba, blocks)
    pats = [utrd(write, ce, cci, dun), hdr, rest, prdt(blocks * BLOCK)]
    if write:
        pats.append(bytes(range(256)))        # the plaintext, repeated
    return ([op_clear()] + [op_pattern(p) for p in pats] +
            [op_write(0, UTRLDBR, 1 << slot), op_step(), op_step()])


def program_slot(cfg_region, slot, dusize=0x08, capidx=0, cfge=True):
    base = slot * 0x80
    cmds = [op_write(cfg_region, base + 4 * i, 0x01010101 * (i + 1)) for i in range(16)]
    cmds.append(op_write(cfg_region, base + 0x40, (cfge << 31) | (capidx << 8) | dusize))
    return cmds


def bring_up():
    return [op_write(0, HCE, 0x3), op_write(0, IE, 0x3FFFF), op_write(0, UICCMD, 0x16),
            op_write(0, UTRLBA, UTRL), op_write(0, UTRLBAU, 0), op_write(0, UTRLRSR, 1)]


# MCQ (mcq=on): CONFIG.QT, queue 0's configuration at 0x400 (MCQCAP.QCFGPTR 2), its
# operation registers at 0x1000; a submission queue entry is the UTRD.
CONFIG, SQATTR, SQLBA, SQUBA, CQATTR, CQLBA, CQUBA, SQ_TP = (0x300, 0x400, 0x404, 0x408, 0x420,
                                                             0x424, 0x428, 0x1004)
SQ, CQ = 0x110000, 0x120000


def mcq_up():
    return [op_write(0, CONFIG, 1), op_write(0, CQLBA, CQ), op_write(0, CQUBA, 0),
            op_write(0, CQATTR, (1 << 31) | 64), op_write(0, SQLBA, SQ), op_write(0, SQUBA, 0),
            op_write(0, SQATTR, (1 << 31) | 64)]


def mcq_request(entry, write, ce, cci, dun, lba=8, blocks=1):
    """Like request(), the doorbell being the submission queue's tail pointer."""
    cmds = request(0, write, ce, cci, dun, lba, blocks)
    cmds[-3] = op_write(0, SQ_TP, 32 * (entry + 1))
    return cmds


def ufs_seeds(cfg_region):
    up = bring_up()
    key = program_slot(cfg_region, 0)
    return {
        "ce-write-read": join(up + key + request(0, True, 1, 0, 5) + request(1, True, 1, 0, 5) +
                              request(2, False, 1, 0, 5)),
        "ce-bad-slot": join(up + key + request(0, True, 1, 3, 7) + request(1, False, 1, 0, 7)),
        "plain-write-read": join(up + request(0, True, 0, 0, 0) + request(1, False, 0, 0, 0)),
        "evict-then-use": join(up + key + program_slot(cfg_region, 0, cfge=False) +
                               request(0, True, 1, 0, 9)),
    }


# CQHCI (BAR0 + 0x200; generic-fuzz region 1, the SDHCI registers being region 0 and
# x-CRYPTOCFG at BAR0 + 0x400 region 2); 128-bit task descriptors, 64-bit DMA (sdhci-pci's
# cqhci=on forces the 64-bit capability), so a task's slot is 16 + 16 bytes.
CQ_CFG, CQ_ISTE, CQ_ISGE, CQ_TDLBA, CQ_TDLBAU, CQ_TDBR = 0x08, 0x14, 0x18, 0x20, 0x24, 0x28
TDL = 0x100000


def cq_task(tag, write, ce, cci, dun, lba=16, blocks=8):
    """Patterns for one CQHCI task's DMA reads (task, first transfer descriptor, data)."""
    td_lo = 1 | 2 | 4 | (5 << 3) | (0 if write else 1 << 12) | (blocks << 16) | (lba << 32)
    td_hi = (dun & 0xFFFFFFFF) | (cci << 32) | (ce << 47)
    tran_lo = 1 | 2 | (4 << 3) | ((blocks * 512) << 16) | (DATA << 32)
    pats = [struct.pack("<QQ", td_lo, td_hi), struct.pack("<QQ", tran_lo, 0)]
    if write:
        pats.append(bytes(range(256)))
    return ([op_clear()] + [op_pattern(p) for p in pats] +
            [op_write(1, CQ_TDBR, 1 << tag), op_step(), op_step()])


def emmc_seeds():
    up = [op_write(1, CQ_ISTE, 0x3F), op_write(1, CQ_ISGE, 0x3F), op_write(1, CQ_TDLBA, TDL),
          op_write(1, CQ_TDLBAU, 0), op_write(1, CQ_CFG, 0x103)]
    key = program_slot(2, 0)
    return {
        "ce-write-read": join(up + key + cq_task(0, True, 1, 0, 5) + cq_task(1, False, 1, 0, 5)),
        "ce-bad-slot": join(up + key + cq_task(0, True, 1, 3, 7)),
        "plain-write-read": join(up + cq_task(0, True, 0, 0, 0) + cq_task(1, False, 0, 0, 0)),
        "evict-then-use": join(up + key + program_slot(2, 0, cfge=False) +
                               cq_task(0, True, 1, 0, 9)),
    }


# The key manager (crypto-wrapped-keys=on; BAR0 0xC0, generic-fuzz region 1). Its input is
# read at KMBA, its output written at KMBA + 0x80: with the DMA patterns cleared nothing
# answers the device's read, so moving KMBA onto the previous output feeds it the blob the
# device itself made (a valid one, which the fuzzer could not forge).
KMCMD, KMCFG, KMBA, KMBAU = 0x08, 0x10, 0x18, 0x1C
KMBUF = 0x400000


def km_cmd(op, length, slot=0):
    return op_write(1, KMCMD, op | (slot << 8) | (length << 16))


def km_seed():
    return (bring_up() +
            [op_write(1, KMBAU, 0), op_write(1, KMBA, KMBUF), op_pattern(bytes(range(7, 39))),
             km_cmd(1, 32),                                   # IMPORT a raw master key
             op_clear(), op_write(1, KMBA, KMBUF + 0x80), km_cmd(3, 64),     # PREPARE
             op_write(1, KMBA, KMBUF + 0x100), km_cmd(4, 64),                # DERIVE
             op_write(1, KMCFG, 0x08), km_cmd(5, 64, slot=0),                # PROGRAM slot 0
             km_cmd(2, 0)] +                                  # GENERATE
            request(0, True, 1, 0, 5) + request(1, True, 1, 0, 5) + request(2, False, 1, 0, 5))


def mcq_seeds():
    up = bring_up() + mcq_up()
    key = program_slot(1, 0)
    return {
        "mcq-ce-write-read": join(up + key + mcq_request(0, True, 1, 0, 5) +
                                  mcq_request(1, True, 1, 0, 5) + mcq_request(2, False, 1, 0, 5)),
        "mcq-ce-bad-slot": join(up + key + mcq_request(0, True, 1, 3, 7)),
    }


def main():
    out = sys.argv[1]
    # generic-fuzz numbers the device's MMIO ranges in address order: the UFS BAR is split by
    # x-CRYPTOCFG at 0x2000 and, with the key manager, by its registers at 0xC0.
    targets = {
        "ufs-crypto": ufs_seeds(cfg_region=1),
        "ufs-crypto-mcq": {**ufs_seeds(cfg_region=1), **mcq_seeds()},
        "ufs-wrapped": {**ufs_seeds(cfg_region=3), "km-import-prepare-program": join(km_seed())},
        "emmc-cqhci": emmc_seeds(),
    }
    for target, seeds in targets.items():
        os.makedirs(os.path.join(out, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
