/*
 * Inline crypto engine for storage host controllers (UFSHCI / CQHCI style)
 *
 * The controller-agnostic part of an inline encryption engine: the
 * capability table (CCAP / x-CRYPTOCAP), the keyslot array (x-CRYPTOCFG)
 * with its register semantics, per-data-unit AES-XTS, fault injection,
 * a JSON-lines event log and a QOM state snapshot.  A front end (hw/ufs,
 * hw/sd/cqhci.c) maps its registers and request descriptors onto this API.
 *
 * Files (hw/block/): inline-crypto.c life cycle, capabilities, enable and
 * QOM properties; inline-crypto-keyslots.c keys and the keyslot registers;
 * inline-crypto-req.c request admission and transforms;
 * inline-crypto-staging.c the staging memory; inline-crypto-log.c the
 * event log.
 *
 * Invariants:
 *  - a slot holds a key reference iff CFGE=1 and its config validated;
 *  - a request holds its own key reference from admission to finish, so
 *    reprogramming or wiping a slot never frees a cipher in use;
 *  - key bytes are never returned by a register read, a trace event, the
 *    QOM state or the log (unless log-keys is set), and are zeroized when
 *    they leave the engine.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_BLOCK_INLINE_CRYPTO_H
#define HW_BLOCK_INLINE_CRYPTO_H

#include "hw/registerfields.h"
#include "chardev/char-fe.h"
#include "crypto/cipher.h"
#include "exec/memory.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "qemu/bswap.h"
#include "system/dma.h"

#define INLINE_CRYPTO_MAX_SLOTS     256
#define INLINE_CRYPTO_MAX_CAPS      255
#define INLINE_CRYPTO_CFG_DWORDS    32
#define INLINE_CRYPTO_CFG_SIZE      (INLINE_CRYPTO_CFG_DWORDS * 4)
#define INLINE_CRYPTO_KEY_DWORDS    16
#define INLINE_CRYPTO_KEY_MAX       (INLINE_CRYPTO_KEY_DWORDS * 4)
#define INLINE_CRYPTO_FP_LEN        16  /* hex digits of a key fingerprint */
#define INLINE_CRYPTO_DEFAULT_CAPS  "aes-xts-256:0x0f"
#define INLINE_CRYPTO_DU_MAX        (64 * 1024) /* DUSIZE bit 7 */
/* Staging memory is handed out in granules: no data unit straddles one */
#define INLINE_CRYPTO_STAGING_GRANULE INLINE_CRYPTO_DU_MAX
#define INLINE_CRYPTO_STAGING_DEFAULT (32 * 1024 * 1024)

/* Crypto capability register (CCAP); identical in UFSHCI and CQHCI */
REG32(ICE_CCAP, 0)
    FIELD(ICE_CCAP, CC, 0, 8)
    FIELD(ICE_CCAP, CFGC, 8, 8)
    FIELD(ICE_CCAP, CFGPTR, 24, 8)

/* One x-CRYPTOCAP entry */
REG32(ICE_CAP, 0)
    FIELD(ICE_CAP, ALGID, 0, 8)
    FIELD(ICE_CAP, SDUSB, 8, 8)
    FIELD(ICE_CAP, KS, 16, 8)

/* x-CRYPTOCFG dword 16 */
REG32(ICE_CFG16, 0x40)
    FIELD(ICE_CFG16, DUSIZE, 0, 8)
    FIELD(ICE_CFG16, CAPIDX, 8, 8)
    FIELD(ICE_CFG16, CFGE, 31, 1)
REG32(ICE_CFG17, 0x44)

enum {
    ICE_ALG_AES_XTS = 0,
    ICE_ALG_BITLOCKER_AES_CBC = 1,
    ICE_ALG_AES_ECB = 2,
    ICE_ALG_ESSIV_AES_CBC = 3,
};

enum {
    ICE_KS_128 = 1,
    ICE_KS_192 = 2,
    ICE_KS_256 = 3,
    ICE_KS_512 = 4,
};

/* Why the engine refused or failed a request (event-log "error" strings) */
typedef enum InlineCryptoError {
    ICE_OK = 0,
    ICE_ERR_CGE,        /* crypto general enable is off */
    ICE_ERR_CCI,        /* CCI >= number of keyslots */
    ICE_ERR_DISARMED,   /* slot has CFGE=0 */
    ICE_ERR_INVALID,    /* slot armed with a config that failed validation */
    ICE_ERR_ALIGN,      /* start or length not a multiple of the data unit */
    ICE_ERR_OPCODE,     /* CE on a data-out command the engine cannot encrypt */
    ICE_ERR_NO_PRDT,    /* data buffer missing or shorter than the transfer */
    ICE_ERR_INJECTED,   /* fault injection */
    ICE_ERR_DMA,        /* guest memory access failed mid-transfer */
    ICE_ERR_CIPHER,     /* the cipher failed mid-transfer */
    ICE_ERR__MAX,
} InlineCryptoError;

/* The controller the engine sits in (event-log "frontend") */
typedef enum InlineCryptoFrontend {
    ICE_FRONTEND_UFS,
    ICE_FRONTEND_CQHCI,
    ICE_FRONTEND__MAX,
} InlineCryptoFrontend;

/* A validated, programmed key; shared by its slot and in-flight requests */
typedef struct InlineCryptoKey {
    unsigned refs;
    QCryptoCipher *cipher;
    uint32_t du_size;
    char fp[INLINE_CRYPTO_FP_LEN + 1];
} InlineCryptoKey;

typedef struct InlineCryptoSlot {
    uint32_t cfg[INLINE_CRYPTO_CFG_DWORDS];
    InlineCryptoKey *key;       /* non-NULL iff CFGE=1 and config valid */
    char fp[INLINE_CRYPTO_FP_LEN + 1];  /* of the last armed key, "" if none */
} InlineCryptoSlot;

typedef struct InlineCryptoCap {
    uint8_t algid;
    uint8_t sdusb;
    uint8_t ks;
} InlineCryptoCap;

/* User configuration (device properties) */
typedef struct InlineCryptoParams {
    bool enabled;
    uint32_t nslots;
    char *caps;
    bool wipe_on_disable;
    bool log_keys;
    CharBackend log;
} InlineCryptoParams;

typedef struct InlineCryptoStats {
    uint64_t programs;
    uint64_t program_errors;
    uint64_t evicts;
    uint64_t disarms;
    uint64_t wipes;
    uint64_t ce_reads;
    uint64_t ce_writes;
    uint64_t errors;
    uint64_t faults;
    uint64_t bytes;
    uint64_t staged;            /* CE data requests given a staging buffer */
    uint64_t chunked;           /* CE data requests that got none */
} InlineCryptoStats;

/*
 * Staging memory: device-private RAM in an address space of its own, from
 * which a front end can lend a CE request a whole-request buffer.  The
 * block layer then moves the request in one zero-copy I/O from/to it (it is
 * RAM to dma_blk_io()), and the engine transforms data between it and the
 * guest's buffers.  It only ever holds ciphertext.
 */
typedef struct InlineCryptoStaging {
    uint64_t size;              /* property; 0 disables staging */
    bool ready;
    MemoryRegion mr;
    AddressSpace as;
    uint8_t *host;
    unsigned long *used;        /* one bit per granule */
    uint64_t granules;
    uint64_t free;
} InlineCryptoStaging;

typedef struct InlineCrypto {
    InlineCryptoParams p;
    InlineCryptoStaging staging;

    /* set up at realize */
    bool realized;
    char *ctrl;
    uint8_t cfgptr;
    unsigned ncaps;
    InlineCryptoCap caps[INLINE_CRYPTO_MAX_CAPS];
    InlineCryptoSlot *slots;

    /* run time */
    bool on;                    /* controller enable (front end's view) */
    bool cge;                   /* crypto general enable */
    int last_slot;              /* last x-CRYPTOCFG write (evict detection) */
    int last_dword;
    uint64_t seq;
    uint32_t fault_count;
    bool fault_fatal;
    InlineCryptoStats stats;
} InlineCrypto;

/*
 * What a front end decoded from a request descriptor (UTRD + CDB, CQHCI
 * task descriptor), the input of inline_crypto_admit().
 */
typedef struct InlineCryptoDesc {
    bool ce;                    /* the descriptor's crypto enable */
    unsigned cci;               /* its keyslot index */
    uint64_t dun;               /* its data unit number */
    bool rw;                    /* a READ / WRITE the engine transforms */
    bool write;                 /* data moves to the medium */
    bool has_buf;               /* the descriptor has a data buffer */
    uint64_t buf_len;           /* bytes that buffer covers */
    uint64_t start;             /* first byte on the medium */
    uint64_t len;               /* bytes the command moves */
    /* for the event log */
    unsigned lun;
    uint8_t opcode;
    uint64_t lba;
    uint64_t blocks;
    uint32_t block_size;
    const char *queue;          /* copied */
} InlineCryptoDesc;

/*
 * Per-request state a front end embeds in its request structure.  The
 * engine owns it: inline_crypto_admit() fills it, the transform functions
 * and inline_crypto_finish() update it; front ends only read it through
 * the accessors below.
 */
typedef struct InlineCryptoReq {
    bool admitted;              /* between admit and finish / release */
    bool logged;                /* finish writes an "io" event */
    bool ce;                    /* a CE request (the log's "ce") */
    bool active;                /* admitted with a key: data is transformed */
    bool failing;               /* failed mid-transfer, being cancelled */
    bool fatal;                 /* injected fault also raises the fatal bit */
    bool write;
    int slot;
    uint64_t dun;
    uint32_t du_size;
    uint64_t offset;            /* bytes of this request moved so far */
    uint64_t len;
    InlineCryptoKey *key;       /* reference held while active */
    InlineCryptoError err;
    bool staged;                /* holds @staging until finish / release */
    QEMUSGList staging;         /* whole-request buffer in staging memory */
    /* the descriptor's identity, for the event log */
    unsigned lun;
    uint8_t opcode;
    uint64_t lba;
    uint64_t blocks;
    uint32_t block_size;
    char queue[16];
} InlineCryptoReq;

#define DEFINE_INLINE_CRYPTO_PROPERTIES(_state, _field)                      \
    DEFINE_PROP_BOOL("crypto", _state, _field.p.enabled, false),             \
    DEFINE_PROP_UINT32("crypto-keyslots", _state, _field.p.nslots, 32),      \
    DEFINE_PROP_STRING("crypto-caps", _state, _field.p.caps),                \
    DEFINE_PROP_BOOL("crypto-wipe-on-disable", _state,                       \
                     _field.p.wipe_on_disable, true),                        \
    DEFINE_PROP_CHR("crypto-log", _state, _field.p.log),                     \
    DEFINE_PROP_BOOL("crypto-log-keys", _state, _field.p.log_keys, false)

/*
 * Life cycle (inline-crypto.c)
 */

/* Run-time QOM properties crypto-fault-count, -fault-fatal and -state */
void inline_crypto_add_properties(InlineCrypto *ic, Object *obj);
/*
 * x-crypto-staging-size (bytes of staging memory, default 32 MiB, 0 = off)
 * for a front end with a staged data path; without it there is none.
 */
void inline_crypto_add_staging_property(InlineCrypto *ic, Object *obj);

/*
 * Validate the parameters, parse the capability list (at most @max_caps
 * entries fit the front end's x-CRYPTOCAP window), log "realize" and set
 * up the staging memory.
 */
bool inline_crypto_realize(InlineCrypto *ic, DeviceState *dev,
                           InlineCryptoFrontend frontend, uint8_t cfgptr,
                           unsigned max_caps, Error **errp);
void inline_crypto_unrealize(InlineCrypto *ic);

/*
 * The engine exists: crypto=on and realized.  Not the controller's enable
 * (@on) nor crypto general enable (@cge).
 */
static inline bool inline_crypto_realized(const InlineCrypto *ic)
{
    return ic->realized;
}

/* Controller enable / crypto general enable after a register write */
void inline_crypto_set_enable(InlineCrypto *ic, bool on, bool cge);
/* Device reset: clears every keyslot */
void inline_crypto_reset(InlineCrypto *ic);

/*
 * Registers (inline-crypto-keyslots.c)
 */

uint32_t inline_crypto_ccap(const InlineCrypto *ic);
uint32_t inline_crypto_cap_reg(const InlineCrypto *ic, unsigned idx);
uint64_t inline_crypto_cfg_size(const InlineCrypto *ic);
/*
 * The x-CRYPTOCFG array as a region of its own, to be mapped at
 * CFGPTR * 0x100 of the controller's registers: 32-bit accesses only
 * (registers are dwords, UFSHCI 4.0 section 5.2), so that a byte or word
 * access never lands on the wrong bits of a dword (the memory core refuses
 * it: a read returns 0, a write is dropped).  Accesses are traced by the
 * engine, a CRYPTOKEY dword without its value.
 */
void inline_crypto_init_cfg_region(InlineCrypto *ic, MemoryRegion *mr,
                                   Object *owner, const char *name);

/*
 * Requests (inline-crypto-req.c, inline-crypto-staging.c)
 *
 * A front end admits each data command it is about to run from its
 * descriptor, moves the data through the engine if the request is
 * active, and finishes it with its outcome (or releases it without an
 * outcome when the controller drops it).  Every refusal is traced and
 * counted by the engine.
 */

/*
 * Admission of a command before it is issued: crypto checks in the order
 * of icemu's docs/device.md "Errors" (opcode, buffer, injected fault, CGE,
 * CCI, disarmed, invalid, alignment).  On ICE_OK with CE the request is
 * active and holds a key reference until it is finished or released.  On
 * an error the front end completes the command with its status for that
 * error and calls inline_crypto_finish().  Always ICE_OK, inactive, when
 * crypto is off.
 */
InlineCryptoError inline_crypto_admit(InlineCrypto *ic, InlineCryptoReq *r,
                                      const InlineCryptoDesc *d);
/*
 * The request is over: log it (a READ / WRITE, or a refused command) with
 * @bytes moved, the front end's completion status @ocs and the SCSI
 * @status (-1 if never issued), then drop its key and staging buffer.
 */
void inline_crypto_finish(InlineCrypto *ic, InlineCryptoReq *r,
                          uint64_t bytes, unsigned ocs, int status);
/* Drop a request without logging it (controller reset, cleared task) */
void inline_crypto_release(InlineCrypto *ic, InlineCryptoReq *r);

/*
 * The per-data-unit AES-XTS loop of the engine: @len bytes (a multiple of
 * @du) from @in to @out (which may be equal), data unit i of them with the
 * tweak DUN + @unit + i as a 128-bit little-endian number; the carry out of
 * the 64-bit DUN goes into bit 64, as in the kernel's
 * bio_crypt_dun_increment() / blk-crypto-fallback.  Inline so that
 * icemu's engine benchmark (bench/engine-xts.c) runs exactly this code.
 */
static inline int inline_crypto_xts_units(QCryptoCipher *cipher, uint64_t dun,
                                          uint64_t unit, uint32_t du,
                                          const uint8_t *in, uint8_t *out,
                                          size_t len, bool encrypt,
                                          Error **errp)
{
    uint8_t iv[16];

    for (size_t off = 0; off < len; off += du, unit++) {
        uint64_t lo = dun + unit;
        int ret;

        stq_le_p(iv, lo);
        stq_le_p(iv + 8, lo < dun ? 1 : 0);
        if (qcrypto_cipher_setiv(cipher, iv, sizeof(iv), errp) < 0) {
            return -1;
        }
        if (encrypt) {
            ret = qcrypto_cipher_encrypt(cipher, in + off, out + off, du,
                                         errp);
        } else {
            ret = qcrypto_cipher_decrypt(cipher, in + off, out + off, du,
                                         errp);
        }
        if (ret < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * Transform the whole request in place in the host buffer @buf (@len
 * bytes): encrypt a write, decrypt a read.
 */
InlineCryptoError inline_crypto_transform(InlineCrypto *ic,
                                          InlineCryptoReq *r, uint8_t *buf,
                                          uint64_t len);
/*
 * Chunked path: transform the request's next @len bytes between the guest
 * buffer @sg (request byte 0 at its byte 0) and the host buffer @buf, and
 * advance the request past them.  A write reads the plaintext from @sg and
 * writes the ciphertext to @buf; a read decrypts @buf into @sg.  The guest
 * buffer is only read when encrypting, and @buf never holds plaintext.
 * Data units split across @sg entries are handled.  On an error (guest
 * memory: ICE_ERR_DMA, earlier data units may have been moved) the request
 * is failing: the front end cancels the command and finishes the request
 * with inline_crypto_req_done() bytes.
 */
InlineCryptoError inline_crypto_transform_sg(InlineCrypto *ic,
                                             InlineCryptoReq *r,
                                             QEMUSGList *sg, uint8_t *buf,
                                             uint64_t len);

/*
 * Staged path (inline-crypto-staging.c): lend an active request a buffer
 * of its length in the engine's staging memory; NULL if staging is off or
 * has not enough free granules (the front end then uses the chunked
 * path).  The block layer moves the request in one I/O from/to the list.
 */
QEMUSGList *inline_crypto_stage(InlineCrypto *ic, InlineCryptoReq *r,
                                DeviceState *dev);
/* The request's staging buffer, NULL if it has none */
QEMUSGList *inline_crypto_staged_sg(InlineCryptoReq *r);
/*
 * Move @len bytes (rounded down to data units) between the guest buffer
 * @sg and the staging buffer: encrypt a write before it is issued,
 * decrypt a read after it completed.
 */
InlineCryptoError inline_crypto_staged_transform(InlineCrypto *ic,
                                                 InlineCryptoReq *r,
                                                 QEMUSGList *sg,
                                                 uint64_t len);

/* Read-only views of a request for its front end */
static inline bool inline_crypto_req_active(const InlineCryptoReq *r)
{
    return r->active;
}

/* the command is a CE one the engine transforms (also after finish) */
static inline bool inline_crypto_req_ce(const InlineCryptoReq *r)
{
    return r->ce;
}

/* an injected fault that also raises the controller's fatal error bit */
static inline bool inline_crypto_req_fatal(const InlineCryptoReq *r)
{
    return r->err == ICE_ERR_INJECTED && r->fatal;
}

/* failed mid-transfer (inline_crypto_transform_sg); cancel the command */
static inline bool inline_crypto_req_failing(const InlineCryptoReq *r)
{
    return r->failing;
}

/* bytes moved by the chunked path so far */
static inline uint64_t inline_crypto_req_done(const InlineCryptoReq *r)
{
    return r->offset;
}

/* the keyslot a CE request names, -1 without CE */
static inline int inline_crypto_req_slot(const InlineCryptoReq *r)
{
    return r->ce ? r->slot : -1;
}

const char *inline_crypto_error_str(InlineCryptoError err);

#endif /* HW_BLOCK_INLINE_CRYPTO_H */
