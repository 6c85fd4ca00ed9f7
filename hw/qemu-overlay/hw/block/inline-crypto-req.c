/*
 * Inline crypto engine: request admission, data transforms and completion
 *
 * A front end admits a command from what it decoded of the descriptor
 * (InlineCryptoDesc), moves the data of an active request through one of
 * the transforms and finishes the request with its outcome.  The request
 * state (InlineCryptoReq) is the engine's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "inline-crypto-internal.h"
#include "trace.h"

/* Drop the request's staging buffer and key reference */
static void ice_req_put(InlineCrypto *ic, InlineCryptoReq *r)
{
    ice_req_unstage(ic, r);
    if (r->key) {
        ice_key_unref(r->key);
        r->key = NULL;
    }
    r->active = false;
}

/* An injected fault fires on this CE request (crypto-fault-count) */
static void ice_req_fault(InlineCrypto *ic, InlineCryptoReq *r)
{
    ic->fault_count--;
    ic->stats.faults++;
    r->fatal = ic->fault_fatal;
    trace_inline_crypto_fault(ic->ctrl, r->slot, ic->fault_count, r->fatal);
    ice_log_fault(ic, r->fatal);
}

/* The crypto checks of a CE READ / WRITE, after the injected fault */
static InlineCryptoError ice_req_key(InlineCrypto *ic, InlineCryptoReq *r,
                                     uint64_t start, uint64_t len)
{
    InlineCryptoSlot *s;
    unsigned cci = r->slot;

    if (!ic->cge) {
        trace_inline_crypto_refuse_cge(ic->ctrl, cci);
        return ICE_ERR_CGE;
    }
    if (cci >= ic->p.nslots) {
        trace_inline_crypto_refuse_cci(ic->ctrl, cci, ic->p.nslots);
        return ICE_ERR_CCI;
    }
    s = &ic->slots[cci];
    if (!ice_slot_cfge(s)) {
        trace_inline_crypto_refuse_disarmed(ic->ctrl, cci);
        return ICE_ERR_DISARMED;
    }
    if (!s->key) {
        trace_inline_crypto_refuse_invalid(ic->ctrl, cci);
        return ICE_ERR_INVALID;
    }
    r->du_size = s->key->du_size;
    if (start % r->du_size || len % r->du_size) {
        trace_inline_crypto_refuse_align(ic->ctrl, cci, start, len,
                                         r->du_size);
        return ICE_ERR_ALIGN;
    }
    r->key = ice_key_ref(s->key);
    r->active = true;
    return ICE_OK;
}

static InlineCryptoError ice_admit(InlineCrypto *ic, InlineCryptoReq *r,
                                   const InlineCryptoDesc *d)
{
    if (!d->rw) {
        if (d->ce && d->write) {
            /* e.g. WRITE SAME, UNMAP: data the engine cannot encrypt */
            trace_inline_crypto_refuse_opcode(ic->ctrl, d->opcode);
            return ICE_ERR_OPCODE;
        }
        /* non-data and data-in commands run without crypto, unlogged */
        r->ce = false;
        r->logged = false;
        return ICE_OK;
    }
    if (d->len && (!d->has_buf || (d->ce && d->buf_len < d->len))) {
        trace_inline_crypto_refuse_no_buf(ic->ctrl, d->ce, d->len,
                                          d->has_buf ? d->buf_len : 0);
        return ICE_ERR_NO_PRDT;
    }
    if (!d->ce) {
        return ICE_OK;
    }
    if (ic->fault_count) {
        ice_req_fault(ic, r);
        return ICE_ERR_INJECTED;
    }
    return ice_req_key(ic, r, d->start, d->len);
}

InlineCryptoError inline_crypto_admit(InlineCrypto *ic, InlineCryptoReq *r,
                                      const InlineCryptoDesc *d)
{
    inline_crypto_release(ic, r);
    memset(r, 0, sizeof(*r));
    r->slot = -1;
    if (!ic->realized) {
        return ICE_OK;
    }
    r->admitted = true;
    r->logged = true;
    r->ce = d->ce;
    r->slot = d->cci;
    r->dun = d->dun;
    r->write = d->write;
    r->len = d->len;
    r->lun = d->lun;
    r->opcode = d->opcode;
    r->lba = d->lba;
    r->blocks = d->blocks;
    r->block_size = d->block_size;
    pstrcpy(r->queue, sizeof(r->queue), d->queue ? d->queue : "");

    r->err = ice_admit(ic, r, d);
    if (r->err != ICE_OK) {
        ice_req_put(ic, r);
    }
    return r->err;
}

void inline_crypto_finish(InlineCrypto *ic, InlineCryptoReq *r,
                          uint64_t bytes, unsigned ocs, int status)
{
    if (!r->admitted) {
        return;
    }
    if (r->logged) {
        if (r->ce) {
            if (r->write) {
                ic->stats.ce_writes++;
            } else {
                ic->stats.ce_reads++;
            }
        }
        if (r->err != ICE_OK) {
            ic->stats.errors++;
        }
        ice_log_io(ic, r, bytes, ocs, status);
    }
    inline_crypto_release(ic, r);
}

void inline_crypto_release(InlineCrypto *ic, InlineCryptoReq *r)
{
    ice_req_put(ic, r);
    r->admitted = false;
}

/*
 * Transforms
 */

InlineCryptoError inline_crypto_transform(InlineCrypto *ic,
                                          InlineCryptoReq *r, uint8_t *buf,
                                          uint64_t len)
{
    uint32_t du = r->du_size;
    g_autoptr(Error) err = NULL;

    assert(r->active && r->key);
    if (len % du) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, 0, len,
                                            "unaligned length");
        r->err = ICE_ERR_CIPHER;
        return ICE_ERR_CIPHER;
    }
    if (inline_crypto_xts_units(r->key->cipher, r->dun, 0, du, buf, buf, len,
                                r->write, &err) < 0) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, 0, len,
                                            error_get_pretty(err));
        r->err = ICE_ERR_CIPHER;
        return ICE_ERR_CIPHER;
    }
    ic->stats.bytes += len;
    return ICE_OK;
}

/* A position in a scatter/gather list: entry @idx, byte @off of it */
typedef struct IceSgCursor {
    QEMUSGList *sg;
    int idx;
    uint64_t off;
} IceSgCursor;

static void ice_sg_advance(IceSgCursor *c, uint64_t n)
{
    c->off += n;
    while (c->idx < c->sg->nsg && c->off >= c->sg->sg[c->idx].len) {
        c->off -= c->sg->sg[c->idx].len;
        c->idx++;
    }
}

/* Plain copy of @len bytes between @buf and the list from cursor @c on */
static MemTxResult ice_sg_copy(IceSgCursor c, uint8_t *buf, uint64_t len,
                               DMADirection dir)
{
    while (len) {
        ScatterGatherEntry *e;
        uint64_t n;
        MemTxResult res;

        if (c.idx >= c.sg->nsg) {
            return MEMTX_DECODE_ERROR;
        }
        e = &c.sg->sg[c.idx];
        n = MIN(e->len - c.off, len);
        res = dma_memory_rw(c.sg->as, e->base + c.off, buf, n, dir,
                            MEMTXATTRS_UNSPECIFIED);
        if (res != MEMTX_OK) {
            return res;
        }
        buf += n;
        len -= n;
        ice_sg_advance(&c, n);
    }
    return MEMTX_OK;
}

/*
 * The request's bytes [@offset, @offset + @len) between guest memory @sg
 * and @buf (see inline_crypto_transform_sg).  Runs of whole data units
 * inside one PRDT entry are transformed directly between the mapped guest
 * memory and @buf; a data unit split across entries goes through a
 * one-unit buffer that is wiped afterwards.
 */
InlineCryptoError ice_transform_sg(InlineCrypto *ic, InlineCryptoReq *r,
                                   QEMUSGList *sg, uint64_t offset,
                                   uint8_t *buf, uint64_t len, bool encrypt)
{
    uint32_t du = r->du_size;
    DMADirection dir = encrypt ? DMA_DIRECTION_TO_DEVICE
                               : DMA_DIRECTION_FROM_DEVICE;
    QCryptoCipher *cipher;
    IceSgCursor c = { .sg = sg };
    g_autofree uint8_t *unit_buf = NULL;
    g_autoptr(Error) err = NULL;
    InlineCryptoError ret = ICE_OK;
    uint64_t done = 0;

    assert(r->active && r->key);
    cipher = r->key->cipher;
    if (offset % du || len % du) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, offset, len,
                                            "unaligned chunk");
        return ICE_ERR_CIPHER;
    }
    ice_sg_advance(&c, offset);

    while (done < len) {
        uint64_t unit = (offset + done) / du;
        dma_addr_t maplen = 0;
        uint64_t n = 0;
        void *p = NULL;
        int rc = 0;

        if (c.idx >= sg->nsg) {
            ret = ICE_ERR_DMA;
            break;
        }
        maplen = MIN(sg->sg[c.idx].len - c.off, len - done);
        if (maplen >= du) {
            dma_addr_t addr = sg->sg[c.idx].base + c.off;

            maplen = QEMU_ALIGN_DOWN(maplen, du);
            if (!address_space_access_valid(sg->as, addr, maplen, !encrypt,
                                            MEMTXATTRS_UNSPECIFIED)) {
                ret = ICE_ERR_DMA;
                break;
            }
            p = dma_memory_map(sg->as, addr, &maplen, dir,
                               MEMTXATTRS_UNSPECIFIED);
            n = p ? QEMU_ALIGN_DOWN(maplen, du) : 0;
        }

        if (n) {
            rc = inline_crypto_xts_units(cipher, r->dun, unit, du,
                                         encrypt ? p : buf + done,
                                         encrypt ? buf + done : p, n,
                                         encrypt, &err);
            dma_memory_unmap(sg->as, p, maplen, dir, n);
        } else {
            if (p) {
                dma_memory_unmap(sg->as, p, maplen, dir, 0);
            }
            n = du;
            if (!unit_buf) {
                unit_buf = g_malloc(du);
            }
            if (encrypt) {
                if (ice_sg_copy(c, unit_buf, du, dir) != MEMTX_OK) {
                    ret = ICE_ERR_DMA;
                    break;
                }
                rc = inline_crypto_xts_units(cipher, r->dun, unit, du,
                                             unit_buf, buf + done, du, true,
                                             &err);
            } else {
                rc = inline_crypto_xts_units(cipher, r->dun, unit, du,
                                             buf + done, unit_buf, du, false,
                                             &err);
                if (rc == 0 && ice_sg_copy(c, unit_buf, du, dir) != MEMTX_OK) {
                    ret = ICE_ERR_DMA;
                    break;
                }
            }
        }
        if (rc < 0) {
            ret = ICE_ERR_CIPHER;
            break;
        }
        done += n;
        ice_sg_advance(&c, n);
    }

    if (unit_buf) {
        /* it held a data unit of plaintext */
        ice_wipe(unit_buf, du);
    }
    if (ret != ICE_OK) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, offset + done,
                                            len - done,
                                            err ? error_get_pretty(err)
                                                : "guest memory error");
        return ret;
    }
    ic->stats.bytes += len;
    return ICE_OK;
}

InlineCryptoError inline_crypto_transform_sg(InlineCrypto *ic,
                                             InlineCryptoReq *r,
                                             QEMUSGList *sg, uint8_t *buf,
                                             uint64_t len)
{
    InlineCryptoError err = ICE_ERR_DMA;

    if (r->active) {
        err = ice_transform_sg(ic, r, sg, r->offset, buf, len, r->write);
    }
    if (err != ICE_OK) {
        r->err = err;
        r->failing = true;
        return err;
    }
    r->offset += len;
    return ICE_OK;
}
