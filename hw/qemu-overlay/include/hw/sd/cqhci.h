/*
 * eMMC Command Queuing Host Controller Interface (CQHCI, JESD84-B51
 * appendix B) with optional inline crypto
 *
 * A CQHCI register block that a host controller (sdhci-pci) maps next to
 * its SDHCI registers.  Tasks are fetched from the task descriptor list in
 * guest memory, their transfer descriptors walked, and the data moved
 * between guest memory and the eMMC's BlockBackend directly (the card is
 * in CMDQ mode; the CQHCI sends no CMD44/45/46/47 on the emulated bus, but
 * the card's CMD48 discards reach it through cqhci_card_discard()).
 * With crypto=on
 * the CQHCI crypto registers (CAP.CS, CFG.CRYPTO_GENERAL_ENABLE, CCAP,
 * x-CRYPTOCAP, x-CRYPTOCFG) and the task descriptor crypto fields (DUN
 * bits 95:64, CCI 103:96, CE 111) drive the shared inline crypto engine.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_SD_CQHCI_H
#define HW_SD_CQHCI_H

#include "exec/memory.h"
#include "system/block-backend.h"
#include "system/dma.h"
#include "hw/block/inline-crypto.h"

#define CQHCI_NUM_SLOTS     32
#define CQHCI_DCMD_SLOT     31
/* core registers 0x00-0x5c, CCAP 0x100, x-CRYPTOCAP 0x104-0x1ff */
#define CQHCI_REG_SIZE      0x200
/* x-CRYPTOCFG array at CFGPTR * 0x100 from the CQHCI base */
#define CQHCI_CRYPTO_CFGPTR 0x02
#define CQHCI_VERSION       0x0510

REG32(CQHCI_VER, 0x00)
REG32(CQHCI_CAP, 0x04)
    FIELD(CQHCI_CAP, ITCFVAL, 0, 10)
    FIELD(CQHCI_CAP, ITCFMUL, 12, 4)
    FIELD(CQHCI_CAP, CS, 28, 1)
REG32(CQHCI_CFG, 0x08)
    FIELD(CQHCI_CFG, ENABLE, 0, 1)
    FIELD(CQHCI_CFG, CGE, 1, 1)
    FIELD(CQHCI_CFG, TDS, 8, 1)
    FIELD(CQHCI_CFG, DCMD, 12, 1)
REG32(CQHCI_CTL, 0x0c)
    FIELD(CQHCI_CTL, HALT, 0, 1)
    FIELD(CQHCI_CTL, CLEAR_ALL, 8, 1)
REG32(CQHCI_IS, 0x10)
    FIELD(CQHCI_IS, HAC, 0, 1)
    FIELD(CQHCI_IS, TCC, 1, 1)
    FIELD(CQHCI_IS, RED, 2, 1)
    FIELD(CQHCI_IS, TCL, 3, 1)
    FIELD(CQHCI_IS, GCE, 4, 1)
    FIELD(CQHCI_IS, ICCE, 5, 1)
REG32(CQHCI_ISTE, 0x14)
REG32(CQHCI_ISGE, 0x18)
REG32(CQHCI_IC, 0x1c)
REG32(CQHCI_TDLBA, 0x20)
REG32(CQHCI_TDLBAU, 0x24)
REG32(CQHCI_TDBR, 0x28)
REG32(CQHCI_TCN, 0x2c)
REG32(CQHCI_DQS, 0x30)
REG32(CQHCI_DPT, 0x34)
REG32(CQHCI_TCLR, 0x38)
REG32(CQHCI_TDPE, 0x3c)
REG32(CQHCI_SSC1, 0x40)
REG32(CQHCI_SSC2, 0x44)
REG32(CQHCI_CRDCT, 0x48)
REG32(CQHCI_RMEM, 0x50)
REG32(CQHCI_TERRI, 0x54)
    FIELD(CQHCI_TERRI, C_INDEX, 0, 6)
    FIELD(CQHCI_TERRI, C_TASK, 8, 5)
    FIELD(CQHCI_TERRI, C_VALID, 15, 1)
    FIELD(CQHCI_TERRI, D_INDEX, 16, 6)
    FIELD(CQHCI_TERRI, D_TASK, 24, 5)
    FIELD(CQHCI_TERRI, D_VALID, 31, 1)
REG32(CQHCI_CRI, 0x58)
REG32(CQHCI_CRA, 0x5c)
REG32(CQHCI_CCAP, 0x100)
REG32(CQHCI_CRYPTOCAP, 0x104)

#define CQHCI_IS_MASK   0x3f
#define CQHCI_NUM_REGS  (R_CQHCI_CRA + 1)

/*
 * The "ocs" of a task's io event in the crypto event log (icemu
 * docs/event-log.md).  A CQHCI task has no completion status field, so
 * the log gives the UFSHCI OCS value (UFSHCI 4.0 6.1.1) of the same
 * outcome, and 0xf (UFSHCI's "invalid OCS value") for a data error.
 */
typedef enum CQHCILogStatus {
    CQHCI_LOG_SUCCESS = 0x0,
    CQHCI_LOG_INVALID_CRYPTO_CONFIG = 0x9,  /* IS.ICCE */
    CQHCI_LOG_GENERAL_CRYPTO_ERROR = 0xa,   /* IS.GCE */
    CQHCI_LOG_DATA_ERROR = 0xf,             /* IS.RED: DMA or I/O error */
} CQHCILogStatus;

typedef struct CQHCIState CQHCIState;

typedef struct CQHCITask {
    CQHCIState *cq;
    int tag;
    bool busy;              /* fetched and in flight */
    bool cancelled;         /* cleared while in flight; drop the result */
    bool dcmd;
    bool write;
    bool irq;               /* descriptor INT bit */
    uint64_t lba;
    uint32_t blocks;
    uint64_t len;
    QEMUSGList sg;
    uint8_t *buf;
    QEMUIOVector qiov;
    BlockAIOCB *aiocb;
    InlineCryptoReq crypto;
} CQHCITask;

struct CQHCIState {
    MemoryRegion iomem;
    DeviceState *owner;
    AddressSpace *as;
    QEMUBH *bh;

    /* set up by the host controller */
    BlockBackend *blk;
    uint64_t blk_offset;    /* start of the user data area */
    uint64_t blk_size;      /* bytes of the user data area */
    bool dma64;             /* 16-byte link, 16/12-byte transfer descs */
    bool short_txfr;        /* 12-byte transfer descs with dma64 */
    void (*set_irq)(void *opaque, bool level);
    /* a fatal (injected) engine error: the host controller goes down */
    void (*set_fatal)(void *opaque);
    void *irq_opaque;

    /* registers 0x00-0x5c, indexed by R_CQHCI_* */
    uint32_t regs[CQHCI_NUM_REGS];

    uint32_t pending;       /* doorbell bits not yet fetched */
    uint32_t failed;        /* tasks stopped by an error or discarded */
    bool fatal;             /* fetch nothing until cqhci_reset() */
    CQHCITask tasks[CQHCI_NUM_SLOTS];

    InlineCrypto crypto;
    MemoryRegion crypto_cfg;    /* the x-CRYPTOCFG array, in iomem */
    Error *migration_blocker;
};

#define DEFINE_CQHCI_CRYPTO_PROPERTIES(_state, _field) \
    DEFINE_INLINE_CRYPTO_PROPERTIES(_state, _field.crypto)

void cqhci_instance_init(CQHCIState *cq, Object *owner);
bool cqhci_realize(CQHCIState *cq, DeviceState *owner, AddressSpace *as,
                   Error **errp);
void cqhci_unrealize(CQHCIState *cq);
/* Device reset and the host's Software Reset For All: keyslots too */
void cqhci_reset(CQHCIState *cq);
/* EmmcCmdqDiscardFn: CMD48 on the card discarded @tasks (@opaque: cq) */
void cqhci_card_discard(void *opaque, uint32_t tasks);
/* bytes of the register window including the x-CRYPTOCFG array */
uint64_t cqhci_window_size(CQHCIState *cq);

#endif /* HW_SD_CQHCI_H */
