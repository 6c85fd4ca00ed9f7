/*
 * eMMC Command Queuing Host Controller Interface (CQHCI) with inline crypto
 *
 * Model (see include/hw/sd/cqhci.h):
 *  - a TDBR write while CFG.ENABLE=1 and CTL.HALT=0 marks tags pending;
 *    a bottom half fetches each pending task descriptor (8 or 16 bytes,
 *    CFG.TDS), the link or transfer descriptor after it and the transfer
 *    descriptor list, and starts an asynchronous read or write of the
 *    whole task on the eMMC's BlockBackend through a bounce buffer, so
 *    up to 31 data tasks are in flight at once;
 *  - the block address is in 512-byte sectors, whatever the card's size;
 *  - on completion TDBR bit -> 0, TCN bit -> 1, IS.TCC if the task had
 *    INT set; a direct command (slot 31, CFG.DCMD) waits for the data
 *    tasks in flight (QBAR) and completes with an R1 "tran" status in
 *    CRDCT; CMD6 FLUSH_CACHE flushes the backend;
 *  - CTL.HALT stops fetching and is acknowledged at once (IS.HAC); tasks
 *    already started still complete.  CLEAR_ALL / TCLR while halted drop
 *    tasks (in-flight results are discarded) and set IS.TCL;
 *  - the tasks started on the card are its queue: CMD48 (CMDQ_TASK_MGMT)
 *    on the card discards them (cqhci_card_discard): their results are
 *    dropped and they stay in TDBR, not executed, until cleared;
 *  - errors: a bad descriptor or I/O error sets IS.RED and TERRI (data
 *    error, CMD46/47 index, task); an invalid crypto configuration sets
 *    IS.ICCE and the task's TDPE bit; an injected crypto fault sets IS.GCE
 *    and TERRI.  A failed task stays in TDBR until it is cleared.  A fatal
 *    injected fault (crypto-fault-fatal) also takes the host controller
 *    down (set_fatal): nothing is fetched and no SDHCI command reaches the
 *    card until Software Reset For All, which resets the CQHCI and wipes
 *    the keyslots (Linux then reprograms them, mmc_set_initial_state());
 *  - CFG.ENABLE 1 -> 0 drops the queue but keeps the keyslots: Linux's
 *    recovery toggles it without reprogramming keys;
 *  - the interrupt line is (IS & ISGE) != 0, reported to the host
 *    controller which shows it as SDHCI NORINTSTS bit 14.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/atomic.h"
#include "hw/qdev-core.h"
#include "migration/blocker.h"
#include "hw/sd/cqhci.h"
#include "trace.h"

/* Task descriptor, first 64 bits */
#define TD_VALID            BIT_ULL(0)
#define TD_END              BIT_ULL(1)
#define TD_INT              BIT_ULL(2)
#define TD_ACT(x)           (((x) >> 3) & 7)
#define TD_DIR_READ         BIT_ULL(12)
#define TD_QBAR             BIT_ULL(14)
#define TD_BLK_COUNT(x)     (((x) >> 16) & 0xffff)
#define TD_BLK_ADDR(x)      ((x) >> 32)
#define TD_CMD_INDEX(x)     (((x) >> 16) & 0x3f)
#define TD_CMD_ARG(x)       ((x) >> 32)
/* Task descriptor, second 64 bits (bits 127:64) */
#define TD_DUN(x)           ((x) & 0xffffffffULL)
#define TD_CCI(x)           (((x) >> 32) & 0xff)
#define TD_CE               BIT_ULL(47)

#define ACT_NOP             0
#define ACT_TRAN            4
#define ACT_TASK            5
#define ACT_LINK            6

#define MMC_EXECUTE_READ    46
#define MMC_EXECUTE_WRITE   47
#define MMC_SWITCH          6
#define EXT_CSD_FLUSH_CACHE 32
#define R1_STATE_TRAN_READY 0x900

/* bound on one task's transfer descriptor walk */
#define CQHCI_MAX_DESCS     4096

static bool cqhci_has_crypto(CQHCIState *cq)
{
    return inline_crypto_realized(&cq->crypto);
}

static void cqhci_update_irq(CQHCIState *cq)
{
    if (cq->set_irq) {
        cq->set_irq(cq->irq_opaque,
                    (cq->regs[R_CQHCI_IS] & cq->regs[R_CQHCI_ISGE]) != 0);
    }
}

static void cqhci_raise(CQHCIState *cq, uint32_t bits)
{
    cq->regs[R_CQHCI_IS] |= bits & cq->regs[R_CQHCI_ISTE];
    cqhci_update_irq(cq);
}

static bool cqhci_enabled(CQHCIState *cq)
{
    return FIELD_EX32(cq->regs[R_CQHCI_CFG], CQHCI_CFG, ENABLE);
}

static bool cqhci_halted(CQHCIState *cq)
{
    return FIELD_EX32(cq->regs[R_CQHCI_CTL], CQHCI_CTL, HALT);
}

static uint64_t cqhci_tdl_base(CQHCIState *cq)
{
    return ((uint64_t)cq->regs[R_CQHCI_TDLBAU] << 32) | cq->regs[R_CQHCI_TDLBA];
}

static unsigned cqhci_task_len(CQHCIState *cq)
{
    return FIELD_EX32(cq->regs[R_CQHCI_CFG], CQHCI_CFG, TDS) ? 16 : 8;
}

static unsigned cqhci_link_len(CQHCIState *cq)
{
    return cq->dma64 ? 16 : 8;
}

static unsigned cqhci_trans_len(CQHCIState *cq)
{
    if (!cq->dma64) {
        return 8;
    }
    return cq->short_txfr ? 12 : 16;
}

/*
 * Tasks
 */

static void cqhci_task_free(CQHCITask *t)
{
    if (t->sg.sg) {
        qemu_sglist_destroy(&t->sg);
    }
    if (t->buf) {
        if (inline_crypto_req_ce(&t->crypto)) {
            /*
             * A CE task's buffer held plaintext (a write before it was
             * encrypted in place, a read after it was decrypted): never
             * leave it in freed host memory.  The barrier keeps the
             * compiler from dropping the stores before the free.
             */
            memset(t->buf, 0, t->len);
            barrier();
        }
        qemu_vfree(t->buf);
        t->buf = NULL;
    }
    inline_crypto_release(&t->cq->crypto, &t->crypto);
    t->busy = false;
    t->cancelled = false;
    t->aiocb = NULL;
}

/* Finish the task's crypto request: its io event in the crypto log */
static void cqhci_task_finish(CQHCIState *cq, CQHCITask *t, uint64_t bytes,
                              CQHCILogStatus status)
{
    inline_crypto_finish(&cq->crypto, &t->crypto, bytes, status,
                         status == CQHCI_LOG_SUCCESS ? 0 : -1);
}

/*
 * A task that cannot run: it stays in TDBR (and is not fetched again) until
 * the driver halts and clears it.
 */
static void cqhci_task_error(CQHCIState *cq, CQHCITask *t, uint32_t is_bit)
{
    uint32_t bit = BIT(t->tag);

    cq->failed |= bit;
    if (is_bit == R_CQHCI_IS_ICCE_MASK) {
        cq->regs[R_CQHCI_TDPE] |= bit;
    } else if (!FIELD_EX32(cq->regs[R_CQHCI_TERRI], CQHCI_TERRI, D_VALID)) {
        uint32_t terri = 0;

        terri = FIELD_DP32(terri, CQHCI_TERRI, D_INDEX,
                           t->write ? MMC_EXECUTE_WRITE : MMC_EXECUTE_READ);
        terri = FIELD_DP32(terri, CQHCI_TERRI, D_TASK, t->tag);
        terri = FIELD_DP32(terri, CQHCI_TERRI, D_VALID, 1);
        /* the command error fields are never set */
        cq->regs[R_CQHCI_TERRI] = terri;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "cqhci: task %d failed (IS 0x%x)\n",
                  t->tag, is_bit);
    trace_cqhci_task_error(t->tag, is_bit);
    cqhci_task_free(t);
    cqhci_raise(cq, is_bit);
}

static void cqhci_task_done(CQHCIState *cq, CQHCITask *t)
{
    uint32_t bit = BIT(t->tag);
    bool irq = t->irq;

    cqhci_task_free(t);
    cq->regs[R_CQHCI_TDBR] &= ~bit;
    cq->regs[R_CQHCI_TCN] |= bit;
    if (irq) {
        cqhci_raise(cq, R_CQHCI_IS_TCC_MASK);
    }
    qemu_bh_schedule(cq->bh);
}

/*
 * A fatal engine error (crypto-fault-fatal): the task failed with GCE like
 * any injected fault, and the controller stops until Software Reset For
 * All (cqhci_reset()): no task is fetched, no SDHCI command is sent.
 */
static void cqhci_fatal(CQHCIState *cq, int tag)
{
    trace_cqhci_fatal(tag);
    qemu_log_mask(LOG_GUEST_ERROR,
                  "cqhci: fatal crypto engine error in task %d: the host "
                  "controller needs a reset\n", tag);
    cq->fatal = true;
    if (cq->set_fatal) {
        cq->set_fatal(cq->irq_opaque);
    }
}

/*
 * Copy between the bounce buffer and the transfer descriptors' memory.
 *
 * A transfer descriptor may point anywhere, the controller's own BAR
 * included.  A read's copy runs from the block layer's completion callback,
 * outside any MMIO access or guarded bottom half, so the device's
 * re-entrancy guard would not stop it from writing CQHCI or SDHCI
 * registers; a write to CFG, CTL, TCLR, the SDHCI software reset or one
 * that sends CMD48 frees this very task (its bounce buffer and list) while
 * the copy is still reading them.  Engage the guard for the copy, as
 * aio_bh_call() does for a guarded bottom half: accesses to this device's
 * own registers then fail with MEMTX_ACCESS_ERROR and the task with
 * IS.RED, and nothing can free the task under the copy.
 */
static MemTxResult cqhci_sg_rw(CQHCITask *t, DMADirection dir)
{
    MemReentrancyGuard *guard = &t->cq->owner->mem_reentrancy_guard;
    bool was_engaged = guard->engaged_in_io;
    uint8_t *buf = t->buf;
    uint64_t len = t->len;
    MemTxResult res = MEMTX_OK;

    guard->engaged_in_io = true;
    for (int i = 0; i < t->sg.nsg && len; i++) {
        uint64_t n = MIN(t->sg.sg[i].len, len);

        res = dma_memory_rw(t->sg.as, t->sg.sg[i].base, buf, n, dir,
                            MEMTXATTRS_UNSPECIFIED);
        if (res != MEMTX_OK) {
            break;
        }
        buf += n;
        len -= n;
    }
    guard->engaged_in_io = was_engaged;
    if (res != MEMTX_OK) {
        return res;
    }
    return len ? MEMTX_DECODE_ERROR : MEMTX_OK;
}

static void cqhci_rw_cb(void *opaque, int ret)
{
    CQHCITask *t = opaque;
    CQHCIState *cq = t->cq;
    InlineCryptoReq *r = &t->crypto;

    t->aiocb = NULL;
    if (t->cancelled) {
        cqhci_task_free(t);
        qemu_bh_schedule(cq->bh);
        return;
    }
    if (ret < 0) {
        cqhci_task_finish(cq, t, 0, CQHCI_LOG_DATA_ERROR);
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return;
    }
    if (!t->write) {
        if (inline_crypto_req_active(r) &&
            inline_crypto_transform(&cq->crypto, r, t->buf, t->len)) {
            cqhci_task_finish(cq, t, 0, CQHCI_LOG_GENERAL_CRYPTO_ERROR);
            cqhci_task_error(cq, t, R_CQHCI_IS_GCE_MASK);
            return;
        }
        if (cqhci_sg_rw(t, DMA_DIRECTION_FROM_DEVICE) != MEMTX_OK) {
            cqhci_task_finish(cq, t, 0, CQHCI_LOG_DATA_ERROR);
            cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
            return;
        }
    }
    cqhci_task_finish(cq, t, t->len, CQHCI_LOG_SUCCESS);
    cqhci_task_done(cq, t);
}

static void cqhci_flush_cb(void *opaque, int ret)
{
    CQHCITask *t = opaque;
    CQHCIState *cq = t->cq;

    t->aiocb = NULL;
    if (t->cancelled) {
        cqhci_task_free(t);
        qemu_bh_schedule(cq->bh);
        return;
    }
    if (ret < 0) {
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return;
    }
    cq->regs[R_CQHCI_CRDCT] = R1_STATE_TRAN_READY;
    cqhci_task_done(cq, t);
}

/* Read one descriptor of @len bytes (8, 12 or 16) as two 64-bit words */
static bool cqhci_read_desc(CQHCIState *cq, uint64_t addr, unsigned len,
                            uint64_t *lo, uint64_t *hi)
{
    uint8_t d[16] = { 0 };

    if (dma_memory_read(cq->as, addr, d, len, MEMTXATTRS_UNSPECIFIED)
        != MEMTX_OK) {
        return false;
    }
    *lo = ldq_le_p(d);
    *hi = ldq_le_p(d + 8);
    return true;
}

/* Address field of a link / transfer descriptor (bits 95:32 or 63:32) */
static uint64_t cqhci_desc_addr(CQHCIState *cq, uint64_t lo, uint64_t hi)
{
    uint64_t addr = lo >> 32;

    if (cq->dma64) {
        addr |= (hi & 0xffffffffULL) << 32;
    }
    return addr;
}

/*
 * Walk the transfer descriptor list that the link / transfer descriptor at
 * @addr starts, into t->sg.  Returns false on a malformed list.
 */
static bool cqhci_walk_tdl(CQHCIState *cq, CQHCITask *t, uint64_t addr)
{
    unsigned tlen = cqhci_trans_len(cq);
    uint64_t lo, hi, total = 0;

    for (int n = 0; n < CQHCI_MAX_DESCS; n++) {
        uint32_t len;

        if (!cqhci_read_desc(cq, addr, tlen, &lo, &hi)) {
            return false;
        }
        if (!(lo & TD_VALID)) {
            return false;
        }
        switch (TD_ACT(lo)) {
        case ACT_LINK:
            addr = cqhci_desc_addr(cq, lo, hi);
            continue;
        case ACT_TRAN:
            len = (lo >> 16) & 0xffff;
            qemu_sglist_add(&t->sg, cqhci_desc_addr(cq, lo, hi),
                            len ? len : 0x10000);
            total += len ? len : 0x10000;
            break;
        case ACT_NOP:
            break;
        default:
            return false;
        }
        if (lo & TD_END) {
            return total >= t->len;
        }
        addr += tlen;
    }
    return false;
}

static void cqhci_start_dcmd(CQHCIState *cq, CQHCITask *t, uint64_t td)
{
    t->dcmd = true;
    t->irq = td & TD_INT;
    if (TD_CMD_INDEX(td) == MMC_SWITCH &&
        ((TD_CMD_ARG(td) >> 16) & 0xff) == EXT_CSD_FLUSH_CACHE && cq->blk) {
        t->aiocb = blk_aio_flush(cq->blk, cqhci_flush_cb, t);
        return;
    }
    /* other direct commands (CMD13 etc.) only report the card as ready */
    cq->regs[R_CQHCI_CRDCT] = R1_STATE_TRAN_READY;
    cqhci_task_done(cq, t);
}

/*
 * Admit data task @t (descriptor bits 127:64 in @td_hi) to the crypto
 * engine; false if it refused it (the task has failed).
 */
static bool cqhci_admit(CQHCIState *cq, CQHCITask *t, uint64_t td_hi)
{
    char queue[16];
    InlineCryptoDesc d = {
        .ce = td_hi & TD_CE,
        .cci = TD_CCI(td_hi),
        .dun = TD_DUN(td_hi),
        .rw = true,
        .write = t->write,
        .has_buf = true,
        .buf_len = t->len,
        .start = t->lba * 512,
        .len = t->len,
        .lun = 0,
        .opcode = t->write ? MMC_EXECUTE_WRITE : MMC_EXECUTE_READ,
        .lba = t->lba,
        .blocks = t->blocks,
        .block_size = 512,
        .queue = queue,
    };
    InlineCryptoError err;
    bool fatal;

    snprintf(queue, sizeof(queue), "cq:%d", t->tag);
    err = inline_crypto_admit(&cq->crypto, &t->crypto, &d);
    if (err == ICE_OK) {
        return true;
    }
    fatal = inline_crypto_req_fatal(&t->crypto);
    if (err == ICE_ERR_INJECTED) {
        cqhci_task_finish(cq, t, 0, CQHCI_LOG_GENERAL_CRYPTO_ERROR);
        cqhci_task_error(cq, t, R_CQHCI_IS_GCE_MASK);
    } else {
        cqhci_task_finish(cq, t, 0, CQHCI_LOG_INVALID_CRYPTO_CONFIG);
        cqhci_task_error(cq, t, R_CQHCI_IS_ICCE_MASK);
    }
    if (fatal) {
        cqhci_fatal(cq, t->tag);
    }
    return false;
}

/* Fetch task @tag and start it; false if it has to wait (QBAR) */
static bool cqhci_start_task(CQHCIState *cq, int tag)
{
    CQHCITask *t = &cq->tasks[tag];
    unsigned tdlen = cqhci_task_len(cq);
    uint64_t slot = cqhci_tdl_base(cq) +
                    (uint64_t)tag * (tdlen + cqhci_link_len(cq));
    uint64_t td, td_hi = 0, lo, hi;

    memset(t, 0, sizeof(*t));
    t->cq = cq;
    t->tag = tag;

    if (!cqhci_read_desc(cq, slot, tdlen, &td, &td_hi)) {
        t->busy = true;
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return true;
    }
    if (tdlen == 8) {
        td_hi = 0;
    }
    if (FIELD_EX32(cq->regs[R_CQHCI_CFG], CQHCI_CFG, DCMD) &&
        tag == CQHCI_DCMD_SLOT) {
        /* QBAR: wait for every other task in flight */
        for (int i = 0; i < CQHCI_NUM_SLOTS; i++) {
            if (i != tag && cq->tasks[i].busy) {
                return false;
            }
        }
        t->busy = true;
        cqhci_start_dcmd(cq, t, td);
        return true;
    }

    t->busy = true;
    t->write = !(td & TD_DIR_READ);
    t->irq = td & TD_INT;
    t->lba = TD_BLK_ADDR(td);
    t->blocks = TD_BLK_COUNT(td);
    t->len = (uint64_t)t->blocks * 512;
    qemu_sglist_init(&t->sg, cq->owner, 4, cq->as);

    if (!(td & TD_VALID) || TD_ACT(td) != ACT_TASK || !t->blocks ||
        !cq->blk || t->lba * 512 + t->len > cq->blk_size ||
        !cqhci_read_desc(cq, slot + tdlen, cqhci_link_len(cq), &lo, &hi)) {
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return true;
    }
    /* a link descriptor, or the first transfer descriptor in place */
    if (!(lo & TD_VALID) ||
        !cqhci_walk_tdl(cq, t, TD_ACT(lo) == ACT_LINK ?
                        cqhci_desc_addr(cq, lo, hi) : slot + tdlen)) {
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return true;
    }

    if (!cqhci_admit(cq, t, td_hi)) {
        return true;
    }

    t->buf = blk_try_blockalign(cq->blk, t->len);
    if (!t->buf) {
        cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
        return true;
    }
    qemu_iovec_init_buf(&t->qiov, t->buf, t->len);
    if (t->write) {
        /* guest memory -> bounce buffer, encrypted there */
        if (cqhci_sg_rw(t, DMA_DIRECTION_TO_DEVICE) != MEMTX_OK) {
            cqhci_task_finish(cq, t, 0, CQHCI_LOG_DATA_ERROR);
            cqhci_task_error(cq, t, R_CQHCI_IS_RED_MASK);
            return true;
        }
        if (inline_crypto_req_active(&t->crypto) &&
            inline_crypto_transform(&cq->crypto, &t->crypto, t->buf, t->len)) {
            cqhci_task_finish(cq, t, 0, CQHCI_LOG_GENERAL_CRYPTO_ERROR);
            cqhci_task_error(cq, t, R_CQHCI_IS_GCE_MASK);
            return true;
        }
        t->aiocb = blk_aio_pwritev(cq->blk, cq->blk_offset + t->lba * 512,
                                   &t->qiov, 0, cqhci_rw_cb, t);
    } else {
        t->aiocb = blk_aio_preadv(cq->blk, cq->blk_offset + t->lba * 512,
                                  &t->qiov, 0, cqhci_rw_cb, t);
    }
    return true;
}

static bool cqhci_can_fetch(CQHCIState *cq)
{
    return cqhci_enabled(cq) && !cqhci_halted(cq) && !cq->fatal;
}

static void cqhci_kick(void *opaque)
{
    CQHCIState *cq = opaque;

    while (cqhci_can_fetch(cq) && cq->pending) {
        uint32_t todo = cq->pending;
        bool progress = false;

        for (int tag = 0; tag < CQHCI_NUM_SLOTS; tag++) {
            if (!(todo & BIT(tag)) || cq->tasks[tag].busy ||
                !cqhci_can_fetch(cq)) {
                continue;
            }
            if (cqhci_start_task(cq, tag)) {
                cq->pending &= ~BIT(tag);
                progress = true;
            }
        }
        if (!progress) {
            break;
        }
    }
}

/* Stop the started tasks in @mask; their results are dropped */
static uint32_t cqhci_cancel_tasks(CQHCIState *cq, uint32_t mask)
{
    uint32_t busy = 0;

    for (int tag = 0; tag < CQHCI_NUM_SLOTS; tag++) {
        CQHCITask *t = &cq->tasks[tag];

        if (!(mask & BIT(tag)) || !t->busy) {
            continue;
        }
        busy |= BIT(tag);
        if (t->aiocb) {
            t->cancelled = true;
            blk_aio_cancel_async(t->aiocb);
        } else {
            cqhci_task_free(t);
        }
    }
    return busy;
}

/* Drop the tasks in @mask: not started, in flight or failed */
static void cqhci_clear_tasks(CQHCIState *cq, uint32_t mask)
{
    trace_cqhci_clear(mask & cq->regs[R_CQHCI_TDBR]);
    cqhci_cancel_tasks(cq, mask);
    cq->pending &= ~mask;
    cq->failed &= ~mask;
    cq->regs[R_CQHCI_TDBR] &= ~mask;
    cq->regs[R_CQHCI_TCN] &= ~mask;
    cq->regs[R_CQHCI_TDPE] &= ~mask;
    if (!cq->failed) {
        cq->regs[R_CQHCI_TERRI] = 0;
    }
}

void cqhci_card_discard(void *opaque, uint32_t tasks)
{
    CQHCIState *cq = opaque;
    uint32_t busy = cqhci_cancel_tasks(cq, tasks);

    /* discarded by the card: not executed, owned by the CQE until cleared */
    trace_cqhci_discard(tasks, busy);
    cq->failed |= busy;
}

/*
 * Registers
 */

static uint64_t cqhci_read(void *opaque, hwaddr addr, unsigned size)
{
    CQHCIState *cq = opaque;

    /* the x-CRYPTOCFG array is the engine's region (cqhci_realize) */
    if (cqhci_has_crypto(cq)) {
        if (addr == A_CQHCI_CCAP) {
            return inline_crypto_ccap(&cq->crypto);
        }
        if (addr >= A_CQHCI_CRYPTOCAP && addr < CQHCI_REG_SIZE) {
            return inline_crypto_cap_reg(&cq->crypto,
                                         (addr - A_CQHCI_CRYPTOCAP) / 4);
        }
    }

    switch (addr) {
    case A_CQHCI_TCLR:
        return 0;
    case A_CQHCI_VER ... A_CQHCI_DPT:
    case A_CQHCI_TDPE ... A_CQHCI_CRDCT:
    case A_CQHCI_RMEM ... A_CQHCI_CRA:
        return cq->regs[addr / 4];
    case A_CQHCI_CCAP:
        return 0;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "cqhci: read of unknown register "
                      "0x%" HWADDR_PRIx "\n", addr);
        return 0;
    }
}

static void cqhci_write_cfg(CQHCIState *cq, uint32_t val)
{
    bool was_on = cqhci_enabled(cq);
    uint32_t mask = R_CQHCI_CFG_ENABLE_MASK | R_CQHCI_CFG_TDS_MASK |
                    R_CQHCI_CFG_DCMD_MASK;

    if (cqhci_has_crypto(cq)) {
        mask |= R_CQHCI_CFG_CGE_MASK;
    }
    cq->regs[R_CQHCI_CFG] = val & mask;
    if (was_on && !cqhci_enabled(cq)) {
        /* disabling the CQE drops the queue */
        cqhci_clear_tasks(cq, ~0u);
    }
    if (cqhci_has_crypto(cq)) {
        inline_crypto_set_enable(&cq->crypto, cqhci_enabled(cq),
                                 FIELD_EX32(cq->regs[R_CQHCI_CFG], CQHCI_CFG,
                                            CGE));
    }
    qemu_bh_schedule(cq->bh);
}

static void cqhci_write_ctl(CQHCIState *cq, uint32_t val)
{
    bool halt = FIELD_EX32(val, CQHCI_CTL, HALT);

    if (halt && !cqhci_halted(cq)) {
        trace_cqhci_halt(true, cq->regs[R_CQHCI_TDBR]);
        cq->regs[R_CQHCI_CTL] |= R_CQHCI_CTL_HALT_MASK;
        cqhci_raise(cq, R_CQHCI_IS_HAC_MASK);
    } else if (!halt && cqhci_halted(cq)) {
        trace_cqhci_halt(false, cq->regs[R_CQHCI_TDBR]);
        cq->regs[R_CQHCI_CTL] &= ~R_CQHCI_CTL_HALT_MASK;
        qemu_bh_schedule(cq->bh);
    }
    if (FIELD_EX32(val, CQHCI_CTL, CLEAR_ALL)) {
        if (cqhci_halted(cq) || !cqhci_enabled(cq)) {
            cqhci_clear_tasks(cq, ~0u);
            cqhci_raise(cq, R_CQHCI_IS_TCL_MASK);
        } else {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "cqhci: CLEAR_ALL_TASKS while not halted\n");
        }
    }
}

static void cqhci_write(void *opaque, hwaddr addr, uint64_t data,
                        unsigned size)
{
    CQHCIState *cq = opaque;
    uint32_t val = data;

    switch (addr) {
    case A_CQHCI_CFG:
        cqhci_write_cfg(cq, val);
        break;
    case A_CQHCI_CTL:
        cqhci_write_ctl(cq, val);
        break;
    case A_CQHCI_IS:
        cq->regs[R_CQHCI_IS] &= ~(val & CQHCI_IS_MASK);
        cqhci_update_irq(cq);
        break;
    case A_CQHCI_ISTE:
        cq->regs[R_CQHCI_ISTE] = val & CQHCI_IS_MASK;
        break;
    case A_CQHCI_ISGE:
        cq->regs[R_CQHCI_ISGE] = val & CQHCI_IS_MASK;
        cqhci_update_irq(cq);
        break;
    case A_CQHCI_IC:
        cq->regs[R_CQHCI_IC] = val & 0x80009f1f;
        break;
    case A_CQHCI_TDLBA:
        cq->regs[R_CQHCI_TDLBA] = val;
        break;
    case A_CQHCI_TDLBAU:
        cq->regs[R_CQHCI_TDLBAU] = val;
        break;
    case A_CQHCI_TDBR:
        if (!cqhci_enabled(cq)) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "cqhci: doorbell 0x%x while disabled\n", val);
            break;
        }
        val &= ~cq->regs[R_CQHCI_TDBR];
        cq->regs[R_CQHCI_TDBR] |= val;
        cq->pending |= val;
        qemu_bh_schedule(cq->bh);
        break;
    case A_CQHCI_TCN:
        cq->regs[R_CQHCI_TCN] &= ~val;
        break;
    case A_CQHCI_TCLR:
        if (cqhci_halted(cq)) {
            cqhci_clear_tasks(cq, val);
        } else {
            qemu_log_mask(LOG_GUEST_ERROR, "cqhci: TCLR while not halted\n");
        }
        break;
    case A_CQHCI_TDPE:
        cq->regs[R_CQHCI_TDPE] &= ~val;
        break;
    case A_CQHCI_SSC1:
        cq->regs[R_CQHCI_SSC1] = val;
        break;
    case A_CQHCI_SSC2:
        cq->regs[R_CQHCI_SSC2] = val & 0xffff;
        break;
    case A_CQHCI_RMEM:
        cq->regs[R_CQHCI_RMEM] = val;
        break;
    case A_CQHCI_TERRI:
        cq->regs[R_CQHCI_TERRI] = 0;
        break;
    case A_CQHCI_VER:
    case A_CQHCI_CAP:
    case A_CQHCI_DQS:
    case A_CQHCI_DPT:
    case A_CQHCI_CRDCT:
    case A_CQHCI_CRI:
    case A_CQHCI_CRA:
    case A_CQHCI_CCAP:
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "cqhci: write of unknown register "
                      "0x%" HWADDR_PRIx "\n", addr);
        break;
    }
}

static const MemoryRegionOps cqhci_ops = {
    .read = cqhci_read,
    .write = cqhci_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/*
 * Life cycle
 */

void cqhci_instance_init(CQHCIState *cq, Object *owner)
{
    inline_crypto_add_properties(&cq->crypto, owner);
}

uint64_t cqhci_window_size(CQHCIState *cq)
{
    if (!cqhci_has_crypto(cq)) {
        return CQHCI_REG_SIZE;
    }
    return MAX(CQHCI_REG_SIZE, CQHCI_CRYPTO_CFGPTR * 0x100 +
               inline_crypto_cfg_size(&cq->crypto));
}

bool cqhci_realize(CQHCIState *cq, DeviceState *owner, AddressSpace *as,
                   Error **errp)
{
    unsigned max_caps = (CQHCI_REG_SIZE - A_CQHCI_CRYPTOCAP) / 4;

    cq->owner = owner;
    cq->as = as;
    /*
     * Linux toggles CFG.ENABLE (cqhci_disable, recovery) without
     * reprogramming keys: keyslots survive it, only a reset clears them.
     */
    cq->crypto.p.wipe_on_disable = false;
    /* queue, in-flight tasks and keyslots have no vmstate yet */
    error_setg(&cq->migration_blocker,
               "cqhci: command queue state is not migratable");
    if (migrate_add_blocker(&cq->migration_blocker, errp) < 0) {
        return false;
    }
    if (!inline_crypto_realize(&cq->crypto, owner, ICE_FRONTEND_CQHCI,
                               CQHCI_CRYPTO_CFGPTR, max_caps, errp)) {
        migrate_del_blocker(&cq->migration_blocker);
        return false;
    }
    cq->bh = qemu_bh_new_guarded(cqhci_kick, cq,
                                 &owner->mem_reentrancy_guard);
    memory_region_init_io(&cq->iomem, OBJECT(owner), &cqhci_ops, cq,
                          "cqhci", cqhci_window_size(cq));
    if (cqhci_has_crypto(cq)) {
        inline_crypto_init_cfg_region(&cq->crypto, &cq->crypto_cfg,
                                      OBJECT(owner), "cqhci-crypto-cfg");
        memory_region_add_subregion(&cq->iomem, CQHCI_CRYPTO_CFGPTR * 0x100,
                                    &cq->crypto_cfg);
    }
    cqhci_reset(cq);
    return true;
}

void cqhci_unrealize(CQHCIState *cq)
{
    cqhci_clear_tasks(cq, ~0u);
    if (cq->blk) {
        /* cancelled requests still reference their task */
        blk_drain(cq->blk);
    }
    if (cq->bh) {
        qemu_bh_delete(cq->bh);
        cq->bh = NULL;
    }
    if (cq->crypto_cfg.container) {
        memory_region_del_subregion(&cq->iomem, &cq->crypto_cfg);
    }
    inline_crypto_unrealize(&cq->crypto);
    migrate_del_blocker(&cq->migration_blocker);
}

void cqhci_reset(CQHCIState *cq)
{
    trace_cqhci_reset(cq->regs[R_CQHCI_TDBR], cq->fatal);
    cqhci_clear_tasks(cq, ~0u);
    memset(cq->regs, 0, sizeof(cq->regs));
    cq->regs[R_CQHCI_VER] = CQHCI_VERSION;
    cq->regs[R_CQHCI_CAP] = FIELD_DP32(0, CQHCI_CAP, ITCFVAL, 200);
    cq->regs[R_CQHCI_CAP] = FIELD_DP32(cq->regs[R_CQHCI_CAP], CQHCI_CAP,
                                       ITCFMUL, 3);   /* MHz */
    cq->regs[R_CQHCI_CAP] = FIELD_DP32(cq->regs[R_CQHCI_CAP], CQHCI_CAP, CS,
                                       cqhci_has_crypto(cq));
    cq->regs[R_CQHCI_SSC1] = 0x00011000;
    cq->pending = 0;
    cq->failed = 0;
    cq->fatal = false;
    if (cqhci_has_crypto(cq)) {
        /* CFG is 0 again, and every keyslot is cleared */
        inline_crypto_set_enable(&cq->crypto, false, false);
    }
    inline_crypto_reset(&cq->crypto);
    cqhci_update_irq(cq);
}
