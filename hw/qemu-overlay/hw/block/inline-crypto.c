/*
 * Inline crypto engine for storage host controllers (UFSHCI / CQHCI style)
 *
 * See include/hw/block/inline-crypto.h for the model and its invariants,
 * docs/device.md and docs/event-log.md of icemu for the guest-visible
 * contract.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qemu/cutils.h"
#include "qemu/bswap.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qemu/bitmap.h"
#include "crypto/hash.h"
#include "hw/qdev-core.h"
#include "hw/block/inline-crypto.h"
#include "trace.h"

/*
 * Keys must not outlive their keyslot in freed host memory: only the
 * libgcrypt backend of QEMU's crypto/ wipes a cipher context when it is
 * freed (see ice_key_unref()).  Configure QEMU with --enable-gcrypt.
 */
#ifndef CONFIG_GCRYPT
#error "inline crypto needs --enable-gcrypt (only gcrypt wipes cipher contexts)"
#endif

/*
 * The event log's vocabulary.  inline-crypto-events.def is a byte-identical
 * copy of icemu's schema definition (common/icemu/event-log.def, a test
 * compares them), from which icemu's parser takes the values it accepts.
 * A name the enums below lack fails to compile; one the .def lacks is NULL
 * and trips the assertion in ice_name().
 */
typedef struct IceName {
    const char *s;
} IceName;

typedef enum {
    ICE_EV_REALIZE,
    ICE_EV_ENABLE,
    ICE_EV_WIPE,
    ICE_EV_PROGRAM,
    ICE_EV_EVICT,
    ICE_EV_DISARM,
    ICE_EV_IO,
    ICE_EV_FAULT,
    ICE_EV__MAX,
} IceEvent;

typedef enum {
    ICE_WIPE_DISABLE,
    ICE_WIPE_RESET,
    ICE_WIPE_UNREALIZE,
    ICE_WIPE__MAX,
} IceWipeReason;

enum {
    ICE_PROG_ERR_CAPIDX,
    ICE_PROG_ERR_DUSIZE,
    ICE_PROG_ERR_ALG,
    ICE_PROG_ERR_KEY_SIZE,
    ICE_PROG_ERR_CIPHER,
    ICE_PROG_ERR__MAX,
};

enum {
    ICE_IO_OP_READ,
    ICE_IO_OP_WRITE,
    ICE_IO_OP__MAX,
};

enum {
    ICE_FAULT_OCS,
    ICE_FAULT_FATAL,
    ICE_FAULT__MAX,
};

static const IceName ice_error_str[ICE_ERR__MAX] = {
    [ICE_OK] = { .s = "" },
#define ICEMU_IO_ERROR(ID, id, str) [ICE_ERR_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_event_str[ICE_EV__MAX] = {
#define ICEMU_EVENT(ID, id, str) [ICE_EV_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_frontend_str[ICE_FRONTEND__MAX] = {
#define ICEMU_FRONTEND(ID, id, str) [ICE_FRONTEND_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_wipe_reason_str[ICE_WIPE__MAX] = {
#define ICEMU_WIPE_REASON(ID, id, str) [ICE_WIPE_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_program_error_str[ICE_PROG_ERR__MAX] = {
#define ICEMU_PROGRAM_ERROR(ID, id, str) [ICE_PROG_ERR_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_io_op_str[ICE_IO_OP__MAX] = {
#define ICEMU_IO_OP(ID, id, str) [ICE_IO_OP_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const IceName ice_fault_kind_str[ICE_FAULT__MAX] = {
#define ICEMU_FAULT_KIND(ID, id, str) [ICE_FAULT_##ID] = { .s = str },
#include "hw/block/inline-crypto-events.def"
};

static const char *ice_name(const IceName *table, unsigned idx)
{
    assert(table[idx].s);
    return table[idx].s;
}

static const char *const ice_alg_names[] = {
    [ICE_ALG_AES_XTS] = "aes-xts",
    [ICE_ALG_BITLOCKER_AES_CBC] = "bitlocker-aes-cbc",
    [ICE_ALG_AES_ECB] = "aes-ecb",
    [ICE_ALG_ESSIV_AES_CBC] = "essiv-aes-cbc",
};

const char *inline_crypto_error_str(InlineCryptoError err)
{
    assert(err < ICE_ERR__MAX);
    return ice_name(ice_error_str, err);
}

/* A memset the compiler may not drop for memory that dies right after. */
static void ice_wipe(void *p, size_t len)
{
    volatile uint8_t *v = p; /* volatile: the stores must not be elided */

    while (len--) {
        *v++ = 0;
    }
}

/*
 * Event log (docs/event-log.md, schema version 1)
 */

static bool ice_log_on(InlineCrypto *ic)
{
    return qemu_chr_fe_backend_connected(&ic->p.log);
}

static GString *ice_log_begin(InlineCrypto *ic, IceEvent ev)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "{\"v\":1,\"seq\":%" PRIu64 ",\"t_ns\":%" PRId64
                           ",\"ctrl\":\"%s\",\"ev\":\"%s\"",
                           ic->seq++, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL),
                           ic->ctrl, ice_name(ice_event_str, ev));
    return s;
}

static void ice_log_end(InlineCrypto *ic, GString *s)
{
    g_string_append(s, "}\n");
    if (qemu_chr_fe_write_all(&ic->p.log, (const uint8_t *)s->str,
                              s->len) != s->len) {
        trace_inline_crypto_log_error(ic->ctrl);
    }
    /* the line may hold a raw key with crypto-log-keys=on */
    ice_wipe(s->str, s->len);
    g_string_free(s, true);
}

static const char *ice_bool(bool b)
{
    return b ? "true" : "false";
}

/*
 * Keys
 */

static InlineCryptoKey *ice_key_ref(InlineCryptoKey *key)
{
    key->refs++;
    return key;
}

static void ice_key_unref(InlineCryptoKey *key)
{
    assert(key->refs > 0);
    if (--key->refs == 0) {
        /*
         * The key schedule lives in the backend's context: libgcrypt's
         * gcry_cipher_close() wipes it before freeing it (QEMU 10.0's
         * nettle, gnutls and built-in backends free it without wiping,
         * which is why this file requires CONFIG_GCRYPT).
         */
        qcrypto_cipher_free(key->cipher);
        ice_wipe(key, sizeof(*key));
        g_free(key);
    }
}

static void ice_fingerprint(const uint8_t *key, size_t len,
                            char fp[INLINE_CRYPTO_FP_LEN + 1])
{
    uint8_t digest[32];
    uint8_t *res = digest;
    size_t reslen = sizeof(digest);

    if (qcrypto_hash_bytes(QCRYPTO_HASH_ALGO_SHA256, (const char *)key, len,
                           &res, &reslen, NULL) < 0) {
        pstrcpy(fp, INLINE_CRYPTO_FP_LEN + 1, "");
        return;
    }
    for (int i = 0; i < INLINE_CRYPTO_FP_LEN / 2; i++) {
        snprintf(fp + 2 * i, 3, "%02x", digest[i]);
    }
}

/*
 * Keyslots
 */

static bool ice_slot_cfge(const InlineCryptoSlot *s)
{
    return FIELD_EX32(s->cfg[R_ICE_CFG16], ICE_CFG16, CFGE);
}

static void ice_slot_drop_key(InlineCryptoSlot *s)
{
    if (s->key) {
        ice_key_unref(s->key);
        s->key = NULL;
    }
}

/* Clear a slot completely (registers and key); returns whether CFGE was 1 */
static bool ice_slot_clear(InlineCryptoSlot *s)
{
    bool was_armed = ice_slot_cfge(s);

    ice_slot_drop_key(s);
    ice_wipe(s->cfg, sizeof(s->cfg));
    s->fp[0] = '\0';
    return was_armed;
}

/*
 * Clear every keyslot.  A device reset that finds no slot armed (the one at
 * machine start, for instance) is not an event worth logging.
 */
static void ice_wipe_all(InlineCrypto *ic, IceWipeReason why, bool quiet)
{
    const char *reason = ice_name(ice_wipe_reason_str, why);
    unsigned armed = 0;
    GString *s;

    for (unsigned i = 0; i < ic->p.nslots; i++) {
        armed += ice_slot_clear(&ic->slots[i]);
    }
    ic->last_slot = -1;
    if (quiet && !armed) {
        return;
    }
    ic->stats.wipes++;
    trace_inline_crypto_wipe(ic->ctrl, reason, armed);
    if (ice_log_on(ic)) {
        s = ice_log_begin(ic, ICE_EV_WIPE);
        g_string_append_printf(s, ",\"reason\":\"%s\",\"armed\":%u",
                               reason, armed);
        ice_log_end(ic, s);
    }
}

/*
 * Decode a one-hot DUSIZE into bytes; 0 if it is not one-hot.
 */
static uint32_t ice_dusize_bytes(uint8_t dusize)
{
    if (!dusize || (dusize & (dusize - 1))) {
        return 0;
    }
    return 512u << ctz32(dusize);
}

/*
 * Dword 16 written with CFGE=1: validate the config and arm the slot.
 * Returns the error string for the log ("" when armed).
 */
static const char *ice_slot_program(InlineCrypto *ic, unsigned idx,
                                    uint8_t *key, size_t *keylen)
{
    InlineCryptoSlot *s = &ic->slots[idx];
    uint32_t dw16 = s->cfg[R_ICE_CFG16];
    unsigned capidx = FIELD_EX32(dw16, ICE_CFG16, CAPIDX);
    uint8_t dusize = FIELD_EX32(dw16, ICE_CFG16, DUSIZE);
    uint32_t du_bytes = ice_dusize_bytes(dusize);
    const InlineCryptoCap *cap;
    QCryptoCipherAlgo alg;
    size_t half;
    g_autoptr(Error) err = NULL;
    InlineCryptoKey *k;
    const char *error = "";

    *keylen = 0;
    if (capidx >= ic->ncaps) {
        return ice_name(ice_program_error_str, ICE_PROG_ERR_CAPIDX);
    }
    cap = &ic->caps[capidx];

    /* Key as used: XTS halves at byte 0 and byte 32 (K1 || K2) */
    if (cap->algid == ICE_ALG_AES_XTS &&
        (cap->ks == ICE_KS_128 || cap->ks == ICE_KS_256)) {
        uint8_t raw[INLINE_CRYPTO_KEY_MAX];

        for (int i = 0; i < INLINE_CRYPTO_KEY_DWORDS; i++) {
            stl_le_p(raw + 4 * i, s->cfg[i]);
        }
        half = cap->ks == ICE_KS_128 ? 16 : 32;
        memcpy(key, raw, half);
        memcpy(key + half, raw + INLINE_CRYPTO_KEY_MAX / 2, half);
        *keylen = 2 * half;
        ice_wipe(raw, sizeof(raw));
        ice_fingerprint(key, *keylen, s->fp);
    } else {
        s->fp[0] = '\0';
    }

    if (!du_bytes || !(dusize & cap->sdusb)) {
        return ice_name(ice_program_error_str, ICE_PROG_ERR_DUSIZE);
    }
    if (cap->algid != ICE_ALG_AES_XTS) {
        return ice_name(ice_program_error_str, ICE_PROG_ERR_ALG);
    }
    if (!*keylen) {
        return ice_name(ice_program_error_str, ICE_PROG_ERR_KEY_SIZE);
    }

    alg = cap->ks == ICE_KS_128 ? QCRYPTO_CIPHER_ALGO_AES_128
                                : QCRYPTO_CIPHER_ALGO_AES_256;
    k = g_new0(InlineCryptoKey, 1);
    k->cipher = qcrypto_cipher_new(alg, QCRYPTO_CIPHER_MODE_XTS, key, *keylen,
                                   &err);
    if (!k->cipher) {
        trace_inline_crypto_cipher_error(ic->ctrl, idx,
                                         error_get_pretty(err));
        g_free(k);
        return ice_name(ice_program_error_str, ICE_PROG_ERR_CIPHER);
    }
    k->refs = 1;
    k->du_size = du_bytes;
    pstrcpy(k->fp, sizeof(k->fp), s->fp);
    s->key = k;
    return error;
}

static void ice_write_dw16(InlineCrypto *ic, unsigned idx, uint32_t val)
{
    InlineCryptoSlot *s = &ic->slots[idx];
    bool was_armed = ice_slot_cfge(s);
    bool evict = false;
    GString *log;

    if (!FIELD_EX32(val, ICE_CFG16, CFGE)) {
        /*
         * Linux evicts with the same 19 writes it programs with, all zero:
         * an evict is CFGE=0 right after dword 17 of the same slot with a
         * zero key.  Its program sequence starts with a plain CFGE=0.
         */
        if (ic->last_slot == idx && ic->last_dword == R_ICE_CFG17) {
            evict = true;
            for (int i = 0; i < INLINE_CRYPTO_KEY_DWORDS; i++) {
                if (s->cfg[i]) {
                    evict = false;
                    break;
                }
            }
        }
        s->cfg[R_ICE_CFG16] = val;
        ice_slot_drop_key(s);
        if (evict) {
            s->fp[0] = '\0';
            ic->stats.evicts++;
            trace_inline_crypto_evict(ic->ctrl, idx, was_armed);
            if (ice_log_on(ic)) {
                log = ice_log_begin(ic, ICE_EV_EVICT);
                g_string_append_printf(log, ",\"slot\":%u,\"was_armed\":%s",
                                       idx, ice_bool(was_armed));
                ice_log_end(ic, log);
            }
        } else if (was_armed) {
            ic->stats.disarms++;
            trace_inline_crypto_disarm(ic->ctrl, idx);
            if (ice_log_on(ic)) {
                log = ice_log_begin(ic, ICE_EV_DISARM);
                g_string_append_printf(log, ",\"slot\":%u", idx);
                ice_log_end(ic, log);
            }
        }
        return;
    }

    /* CFGE=1: (re)program */
    {
        uint8_t key[INLINE_CRYPTO_KEY_MAX];
        size_t keylen;
        const char *error;
        unsigned capidx = FIELD_EX32(val, ICE_CFG16, CAPIDX);
        uint32_t du = ice_dusize_bytes(FIELD_EX32(val, ICE_CFG16, DUSIZE));

        ice_slot_drop_key(s);
        s->cfg[R_ICE_CFG16] = val;
        error = ice_slot_program(ic, idx, key, &keylen);
        if (*error) {
            ic->stats.program_errors++;
            trace_inline_crypto_program_error(ic->ctrl, idx, capidx, du,
                                              error);
        } else {
            ic->stats.programs++;
            trace_inline_crypto_program(ic->ctrl, idx, capidx, du);
        }
        if (ice_log_on(ic)) {
            log = ice_log_begin(ic, ICE_EV_PROGRAM);
            g_string_append_printf(log, ",\"slot\":%u,\"capidx\":%u,"
                                   "\"dusize\":%u,\"key_fp\":\"%s\","
                                   "\"ok\":%s", idx, capidx, du, s->fp,
                                   ice_bool(!*error));
            if (*error) {
                g_string_append_printf(log, ",\"error\":\"%s\"", error);
            }
            if (ic->p.log_keys && keylen) {
                g_string_append(log, ",\"key\":\"");
                for (size_t i = 0; i < keylen; i++) {
                    g_string_append_printf(log, "%02x", key[i]);
                }
                g_string_append_c(log, '"');
            }
            ice_log_end(ic, log);
        }
        ice_wipe(key, sizeof(key));
    }
}

uint32_t inline_crypto_cfg_read(InlineCrypto *ic, uint64_t offset)
{
    unsigned idx = offset / INLINE_CRYPTO_CFG_SIZE;
    unsigned dw = (offset % INLINE_CRYPTO_CFG_SIZE) / 4;

    if (idx >= ic->p.nslots) {
        return 0;
    }
    if (dw < INLINE_CRYPTO_KEY_DWORDS) {
        return 0;   /* CRYPTOKEY is write-only */
    }
    return ic->slots[idx].cfg[dw];
}

void inline_crypto_cfg_write(InlineCrypto *ic, uint64_t offset, uint32_t val)
{
    unsigned idx = offset / INLINE_CRYPTO_CFG_SIZE;
    unsigned dw = (offset % INLINE_CRYPTO_CFG_SIZE) / 4;

    if (idx >= ic->p.nslots) {
        trace_inline_crypto_bad_offset(ic->ctrl, offset);
        return;
    }
    if (dw == R_ICE_CFG16) {
        ice_write_dw16(ic, idx, val);
    } else {
        ic->slots[idx].cfg[dw] = val;
    }
    ic->last_slot = idx;
    ic->last_dword = dw;
}

uint64_t inline_crypto_cfg_size(const InlineCrypto *ic)
{
    return (uint64_t)ic->p.nslots * INLINE_CRYPTO_CFG_SIZE;
}

uint32_t inline_crypto_ccap(const InlineCrypto *ic)
{
    uint32_t v = 0;

    v = FIELD_DP32(v, ICE_CCAP, CC, ic->ncaps);
    v = FIELD_DP32(v, ICE_CCAP, CFGC, ic->p.nslots - 1);
    v = FIELD_DP32(v, ICE_CCAP, CFGPTR, ic->cfgptr);
    return v;
}

uint32_t inline_crypto_cap_reg(const InlineCrypto *ic, unsigned idx)
{
    uint32_t v = 0;

    if (idx >= ic->ncaps) {
        return 0;
    }
    v = FIELD_DP32(v, ICE_CAP, ALGID, ic->caps[idx].algid);
    v = FIELD_DP32(v, ICE_CAP, SDUSB, ic->caps[idx].sdusb);
    v = FIELD_DP32(v, ICE_CAP, KS, ic->caps[idx].ks);
    return v;
}

/*
 * Controller state
 */

void inline_crypto_set_enable(InlineCrypto *ic, bool on, bool cge)
{
    bool was_on = ic->on;
    GString *s;

    if (on == ic->on && cge == ic->cge) {
        return;
    }
    ic->on = on;
    ic->cge = cge;
    trace_inline_crypto_enable(ic->ctrl, on, cge);
    if (ice_log_on(ic)) {
        s = ice_log_begin(ic, ICE_EV_ENABLE);
        g_string_append_printf(s, ",\"on\":%s,\"cge\":%s", ice_bool(on),
                               ice_bool(cge));
        ice_log_end(ic, s);
    }
    if (was_on && !on && ic->p.wipe_on_disable) {
        ice_wipe_all(ic, ICE_WIPE_DISABLE, false);
    }
}

void inline_crypto_reset(InlineCrypto *ic)
{
    if (!ic->realized) {
        return;
    }
    ice_wipe_all(ic, ICE_WIPE_RESET, true);
}

/*
 * Requests
 */

InlineCryptoError inline_crypto_req_begin(InlineCrypto *ic,
                                          InlineCryptoReq *r, unsigned cci,
                                          uint64_t dun, uint64_t start,
                                          uint64_t len)
{
    InlineCryptoSlot *s;
    GString *log;

    r->slot = cci;
    r->dun = dun;
    r->offset = 0;
    r->du_size = 0;
    r->key = NULL;
    r->active = false;
    r->fatal = false;

    if (ic->fault_count) {
        ic->fault_count--;
        ic->stats.faults++;
        r->fatal = ic->fault_fatal;
        trace_inline_crypto_fault(ic->ctrl, cci, ic->fault_count, r->fatal);
        if (ice_log_on(ic)) {
            log = ice_log_begin(ic, ICE_EV_FAULT);
            g_string_append_printf(log, ",\"kind\":\"%s\",\"remaining\":%u",
                                   ice_name(ice_fault_kind_str,
                                            r->fatal ? ICE_FAULT_FATAL
                                                     : ICE_FAULT_OCS),
                                   ic->fault_count);
            ice_log_end(ic, log);
        }
        return ICE_ERR_INJECTED;
    }
    if (!ic->cge) {
        return ICE_ERR_CGE;
    }
    if (cci >= ic->p.nslots) {
        return ICE_ERR_CCI;
    }
    s = &ic->slots[cci];
    if (!ice_slot_cfge(s)) {
        return ICE_ERR_DISARMED;
    }
    if (!s->key) {
        return ICE_ERR_INVALID;
    }
    r->du_size = s->key->du_size;
    if (start % r->du_size || len % r->du_size) {
        return ICE_ERR_ALIGN;
    }
    r->key = ice_key_ref(s->key);
    r->active = true;
    return ICE_OK;
}

bool inline_crypto_req_transform(InlineCrypto *ic, InlineCryptoReq *r,
                                 uint8_t *buf, size_t len, bool encrypt)
{
    uint32_t du = r->du_size;
    g_autoptr(Error) err = NULL;

    assert(r->active && r->key);
    if (r->offset % du || len % du) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, r->offset, len,
                                            "unaligned chunk");
        return false;
    }
    if (inline_crypto_xts_units(r->key->cipher, r->dun, r->offset / du, du,
                                buf, buf, len, encrypt, &err) < 0) {
        trace_inline_crypto_transform_error(ic->ctrl, r->slot, r->offset, len,
                                            error_get_pretty(err));
        return false;
    }
    ic->stats.bytes += len;
    return true;
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
 * and @buf (see inline_crypto_req_transform_sg).  Runs of whole data units
 * inside one PRDT entry are transformed directly between the mapped guest
 * memory and @buf; a data unit split across entries goes through a
 * one-unit buffer that is wiped afterwards.
 */
static InlineCryptoError ice_transform_sg(InlineCrypto *ic,
                                          InlineCryptoReq *r, QEMUSGList *sg,
                                          uint64_t offset, uint8_t *buf,
                                          uint64_t len, bool encrypt)
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

InlineCryptoError inline_crypto_req_transform_sg(InlineCrypto *ic,
                                                 InlineCryptoReq *r,
                                                 QEMUSGList *sg, uint8_t *buf,
                                                 uint64_t len, bool encrypt)
{
    return ice_transform_sg(ic, r, sg, r->offset, buf, len, encrypt);
}

/*
 * Staging memory
 */

#define ICE_STAGING_MAX (1 * GiB)

static void ice_get_staging_size(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_size(v, name, &ic->staging.size, errp);
}

static void ice_set_staging_size(Object *obj, Visitor *v, const char *name,
                                 void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    uint64_t value;

    if (DEVICE(obj)->realized) {
        error_setg(errp, "%s cannot be changed after realize", name);
        return;
    }
    if (!visit_type_size(v, name, &value, errp)) {
        return;
    }
    if (value % INLINE_CRYPTO_STAGING_GRANULE ||
        value > (uint64_t)ICE_STAGING_MAX) {
        error_setg(errp, "%s must be a multiple of %u KiB, at most %u MiB",
                   name, (unsigned)(INLINE_CRYPTO_STAGING_GRANULE / KiB),
                   (unsigned)(ICE_STAGING_MAX / MiB));
        return;
    }
    ic->staging.size = value;
}

void inline_crypto_add_staging_property(InlineCrypto *ic, Object *obj)
{
    ic->staging.size = INLINE_CRYPTO_STAGING_DEFAULT;
    object_property_add(obj, "x-crypto-staging-size", "size",
                        ice_get_staging_size, ice_set_staging_size, NULL, ic);
    object_property_set_description(obj, "x-crypto-staging-size",
        "bytes of device memory for whole-request crypto buffers "
        "(0: every CE request takes the chunked path)");
}

bool inline_crypto_staging_realize(InlineCrypto *ic, DeviceState *dev,
                                   Error **errp)
{
    InlineCryptoStaging *st = &ic->staging;

    if (!ic->realized || !st->size) {
        return true;
    }
    /* Private RAM: never mapped for the guest, not migrated */
    if (!memory_region_init_ram_flags_nomigrate(&st->mr, OBJECT(dev),
                                                "inline-crypto-staging",
                                                st->size, 0, errp)) {
        return false;
    }
    address_space_init(&st->as, &st->mr, "inline-crypto-staging");
    st->host = memory_region_get_ram_ptr(&st->mr);
    st->granules = st->size / INLINE_CRYPTO_STAGING_GRANULE;
    st->used = bitmap_new(st->granules);
    st->free = st->granules;
    st->ready = true;
    return true;
}

static void ice_staging_unrealize(InlineCrypto *ic)
{
    InlineCryptoStaging *st = &ic->staging;

    if (!st->ready) {
        return;
    }
    address_space_destroy(&st->as);
    object_unparent(OBJECT(&st->mr));
    g_free(st->used);
    st->used = NULL;
    st->host = NULL;
    st->ready = false;
}

bool inline_crypto_req_stage(InlineCrypto *ic, InlineCryptoReq *r,
                             DeviceState *dev, uint64_t len)
{
    InlineCryptoStaging *st = &ic->staging;
    const uint64_t g = INLINE_CRYPTO_STAGING_GRANULE;
    uint64_t need = DIV_ROUND_UP(len, g);
    uint64_t left = len;
    uint64_t bit = 0;

    assert(r->active && !r->staged);
    if (!len) {
        return false;
    }
    if (!st->ready || need > st->free) {
        ic->stats.chunked++;
        return false;
    }
    /* Any free granules will do: runs of them become the list's entries */
    qemu_sglist_init(&r->staging, dev, MIN(need, 16), &st->as);
    while (left) {
        uint64_t run = 1;
        uint64_t bytes;

        bit = find_next_zero_bit(st->used, st->granules, bit);
        assert(bit < st->granules);
        while (run * g < left && bit + run < st->granules &&
               !test_bit(bit + run, st->used)) {
            run++;
        }
        bytes = MIN(run * g, left);
        bitmap_set(st->used, bit, run);
        qemu_sglist_add(&r->staging, bit * g, bytes);
        left -= bytes;
        bit += run;
    }
    st->free -= need;
    r->staged = true;
    ic->stats.staged++;
    return true;
}

static void ice_req_unstage(InlineCrypto *ic, InlineCryptoReq *r)
{
    InlineCryptoStaging *st = &ic->staging;
    const uint64_t g = INLINE_CRYPTO_STAGING_GRANULE;

    if (!r->staged) {
        return;
    }
    for (int i = 0; i < r->staging.nsg; i++) {
        ScatterGatherEntry *e = &r->staging.sg[i];
        uint64_t n = DIV_ROUND_UP(e->len, g);

        bitmap_clear(st->used, e->base / g, n);
        st->free += n;
    }
    qemu_sglist_destroy(&r->staging);
    r->staged = false;
}

InlineCryptoError inline_crypto_req_staged_transform(InlineCrypto *ic,
                                                     InlineCryptoReq *r,
                                                     QEMUSGList *sg,
                                                     uint64_t len,
                                                     bool encrypt)
{
    InlineCryptoStaging *st = &ic->staging;
    uint64_t done = 0;

    assert(r->staged);
    for (int i = 0; i < r->staging.nsg && done < len; i++) {
        ScatterGatherEntry *e = &r->staging.sg[i];
        uint64_t n = MIN(e->len, len - done);
        InlineCryptoError err;

        /* entries are whole granules, so data units never straddle two */
        err = ice_transform_sg(ic, r, sg, done, st->host + e->base, n,
                               encrypt);
        if (err != ICE_OK) {
            return err;
        }
        done += n;
    }
    return done == len ? ICE_OK : ICE_ERR_DMA;
}

void inline_crypto_req_end(InlineCrypto *ic, InlineCryptoReq *r)
{
    ice_req_unstage(ic, r);
    if (r->key) {
        ice_key_unref(r->key);
        r->key = NULL;
    }
    r->active = false;
}

void inline_crypto_log_io(InlineCrypto *ic, const InlineCryptoIo *io)
{
    const InlineCryptoReq *r = io->req;
    const InlineCryptoKey *key = r->key;
    GString *s;

    if (r->ce) {
        if (io->write) {
            ic->stats.ce_writes++;
        } else {
            ic->stats.ce_reads++;
        }
    }
    if (r->err != ICE_OK) {
        ic->stats.errors++;
    }
    if (!ice_log_on(ic)) {
        return;
    }
    /* a refused request reports the slot's key, if the slot has a valid one */
    if (!key && r->ce && r->slot >= 0 && r->slot < ic->p.nslots) {
        key = ic->slots[r->slot].key;
    }
    s = ice_log_begin(ic, ICE_EV_IO);
    g_string_append_printf(s, ",\"slot\":%d,\"ce\":%s,\"lun\":%u,"
                           "\"op\":\"%s\",\"opcode\":%u,\"lba\":%" PRIu64
                           ",\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64
                           ",\"block_size\":%u,\"dun\":%" PRIu64
                           ",\"dusize\":%u,\"key_fp\":\"%s\",\"ocs\":%u,"
                           "\"status\":%d,\"queue\":\"%s\"",
                           r->ce ? r->slot : -1, ice_bool(r->ce), io->lun,
                           ice_name(ice_io_op_str, io->write ? ICE_IO_OP_WRITE
                                                             : ICE_IO_OP_READ),
                           io->opcode, io->lba,
                           io->blocks, io->bytes, io->block_size,
                           r->ce ? r->dun : 0, key ? key->du_size : 0,
                           key ? key->fp : "",
                           io->ocs, io->status, io->queue);
    if (r->err != ICE_OK) {
        g_string_append_printf(s, ",\"error\":\"%s\"",
                               inline_crypto_error_str(r->err));
    }
    ice_log_end(ic, s);
}

/*
 * Capabilities: "aes-xts-256:0x0f/aes-xts-128:0x08/..."
 */

static bool ice_parse_cap(const char *str, InlineCryptoCap *cap, Error **errp)
{
    const char *colon = strchr(str, ':');
    const char *dash;
    g_autofree char *name = NULL;
    unsigned bits, sdusb;
    const char *end;
    int i;

    if (!colon) {
        error_setg(errp, "crypto-caps entry '%s' is not ALG-KEYBITS:SDUSB",
                   str);
        return false;
    }
    name = g_strndup(str, colon - str);
    dash = strrchr(name, '-');
    if (!dash || qemu_strtoui(dash + 1, &end, 10, &bits) || *end) {
        error_setg(errp, "crypto-caps entry '%s': no key size", str);
        return false;
    }
    name[dash - name] = '\0';
    for (i = 0; i < ARRAY_SIZE(ice_alg_names); i++) {
        if (!strcmp(name, ice_alg_names[i])) {
            break;
        }
    }
    if (i == ARRAY_SIZE(ice_alg_names)) {
        error_setg(errp, "crypto-caps entry '%s': unknown algorithm '%s'",
                   str, name);
        return false;
    }
    cap->algid = i;
    switch (bits) {
    case 128:
        cap->ks = ICE_KS_128;
        break;
    case 192:
        cap->ks = ICE_KS_192;
        break;
    case 256:
        cap->ks = ICE_KS_256;
        break;
    case 512:
        cap->ks = ICE_KS_512;
        break;
    default:
        error_setg(errp, "crypto-caps entry '%s': key size must be 128, 192, "
                   "256 or 512", str);
        return false;
    }
    if (qemu_strtoui(colon + 1, &end, 0, &sdusb) || *end || sdusb > 0xff) {
        error_setg(errp, "crypto-caps entry '%s': SDUSB must be 0..0xff", str);
        return false;
    }
    cap->sdusb = sdusb;
    return true;
}

static bool ice_parse_caps(InlineCrypto *ic, const char *str,
                           unsigned max_caps, Error **errp)
{
    g_auto(GStrv) items = g_strsplit(str, "/", -1);

    ic->ncaps = 0;
    for (int i = 0; items[i]; i++) {
        if (ic->ncaps >= max_caps) {
            error_setg(errp, "crypto-caps: at most %u entries", max_caps);
            return false;
        }
        if (!ice_parse_cap(items[i], &ic->caps[ic->ncaps], errp)) {
            return false;
        }
        ic->ncaps++;
    }
    if (!ic->ncaps) {
        error_setg(errp, "crypto-caps: at least one entry is needed");
        return false;
    }
    return true;
}

bool inline_crypto_realize(InlineCrypto *ic, DeviceState *dev,
                           InlineCryptoFrontend frontend, uint8_t cfgptr,
                           unsigned max_caps, Error **errp)
{
    GString *s;

    if (!ic->p.enabled) {
        return true;
    }
    if (ic->p.nslots < 1 || ic->p.nslots > INLINE_CRYPTO_MAX_SLOTS) {
        error_setg(errp, "crypto-keyslots must be between 1 and %d",
                   INLINE_CRYPTO_MAX_SLOTS);
        return false;
    }
    if (!ice_parse_caps(ic, ic->p.caps ? ic->p.caps
                                       : INLINE_CRYPTO_DEFAULT_CAPS,
                        MIN(max_caps, INLINE_CRYPTO_MAX_CAPS), errp)) {
        return false;
    }
    ic->cfgptr = cfgptr;
    ic->ctrl = dev->id ? g_strdup(dev->id)
                       : object_get_canonical_path(OBJECT(dev));
    ic->slots = g_new0(InlineCryptoSlot, ic->p.nslots);
    ic->last_slot = -1;
    ic->last_dword = -1;
    ic->realized = true;

    if (ice_log_on(ic)) {
        s = ice_log_begin(ic, ICE_EV_REALIZE);
        g_string_append_printf(s, ",\"slots\":%u,\"cfgptr\":%u,\"caps\":[",
                               ic->p.nslots, cfgptr);
        for (unsigned i = 0; i < ic->ncaps; i++) {
            g_string_append_printf(s, "%s{\"idx\":%u,\"algid\":%u,"
                                   "\"sdusb\":%u,\"ks\":%u}", i ? "," : "",
                                   i, ic->caps[i].algid, ic->caps[i].sdusb,
                                   ic->caps[i].ks);
        }
        g_string_append_printf(s, "],\"wipe_on_disable\":%s,"
                               "\"log_keys\":%s,\"frontend\":\"%s\"",
                               ice_bool(ic->p.wipe_on_disable),
                               ice_bool(ic->p.log_keys),
                               ice_name(ice_frontend_str, frontend));
        ice_log_end(ic, s);
    }
    return true;
}

void inline_crypto_unrealize(InlineCrypto *ic)
{
    if (!ic->realized) {
        return;
    }
    ice_wipe_all(ic, ICE_WIPE_UNREALIZE, false);
    ice_staging_unrealize(ic);
    g_free(ic->slots);
    ic->slots = NULL;
    g_free(ic->ctrl);
    ic->ctrl = NULL;
    ic->realized = false;
}

/*
 * QOM run-time properties
 */

static void ice_get_fault_count(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_uint32(v, name, &ic->fault_count, errp);
}

static void ice_set_fault_count(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    uint32_t value;

    if (!visit_type_uint32(v, name, &value, errp)) {
        return;
    }
    ic->fault_count = value;
    trace_inline_crypto_fault_armed(ic->ctrl ? ic->ctrl : "-", value,
                                    ic->fault_fatal);
}

static void ice_get_fault_fatal(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;

    visit_type_bool(v, name, &ic->fault_fatal, errp);
}

static void ice_set_fault_fatal(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    InlineCrypto *ic = opaque;
    bool value;

    if (!visit_type_bool(v, name, &value, errp)) {
        return;
    }
    ic->fault_fatal = value;
}

static QDict *ice_state(InlineCrypto *ic)
{
    QDict *d = qdict_new();
    QDict *c = qdict_new();
    QList *slots = qlist_new();

    qdict_put_bool(d, "enabled", ic->realized);
    qdict_put_bool(d, "on", ic->on);
    qdict_put_bool(d, "cge", ic->cge);
    for (unsigned i = 0; ic->realized && i < ic->p.nslots; i++) {
        InlineCryptoSlot *s = &ic->slots[i];
        uint32_t dw16 = s->cfg[R_ICE_CFG16];
        QDict *e = qdict_new();

        qdict_put_int(e, "slot", i);
        qdict_put_bool(e, "armed", ice_slot_cfge(s));
        qdict_put_bool(e, "valid", s->key != NULL);
        qdict_put_int(e, "capidx", FIELD_EX32(dw16, ICE_CFG16, CAPIDX));
        qdict_put_int(e, "dusize",
                      ice_dusize_bytes(FIELD_EX32(dw16, ICE_CFG16, DUSIZE)));
        qdict_put_str(e, "key_fp", s->key ? s->key->fp : "");
        qlist_append(slots, e);
    }
    qdict_put(d, "slots", slots);
    qdict_put_int(c, "programs", ic->stats.programs);
    qdict_put_int(c, "program_errors", ic->stats.program_errors);
    qdict_put_int(c, "evicts", ic->stats.evicts);
    qdict_put_int(c, "disarms", ic->stats.disarms);
    qdict_put_int(c, "wipes", ic->stats.wipes);
    qdict_put_int(c, "ce_reads", ic->stats.ce_reads);
    qdict_put_int(c, "ce_writes", ic->stats.ce_writes);
    qdict_put_int(c, "errors", ic->stats.errors);
    qdict_put_int(c, "faults", ic->stats.faults);
    qdict_put_int(c, "bytes", ic->stats.bytes);
    qdict_put_int(c, "staged", ic->stats.staged);
    qdict_put_int(c, "chunked", ic->stats.chunked);
    qdict_put(d, "counters", c);
    qdict_put_int(d, "fault_count", ic->fault_count);
    qdict_put_bool(d, "fault_fatal", ic->fault_fatal);
    return d;
}

static void ice_get_state(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    QObject *state = QOBJECT(ice_state(opaque));

    visit_type_any(v, name, &state, errp);
    qobject_unref(state);
}

void inline_crypto_add_properties(InlineCrypto *ic, Object *obj)
{
    object_property_add(obj, "crypto-fault-count", "uint32",
                        ice_get_fault_count, ice_set_fault_count, NULL, ic);
    object_property_set_description(obj, "crypto-fault-count",
        "the next N crypto data requests fail with a general crypto error");
    object_property_add(obj, "crypto-fault-fatal", "bool",
                        ice_get_fault_fatal, ice_set_fault_fatal, NULL, ic);
    object_property_set_description(obj, "crypto-fault-fatal",
        "injected crypto faults also raise the crypto engine fatal error");
    object_property_add(obj, "crypto-state", "any", ice_get_state, NULL, NULL,
                        ic);
    object_property_set_description(obj, "crypto-state",
        "keyslot table and counters of the inline crypto engine (read-only)");
}
