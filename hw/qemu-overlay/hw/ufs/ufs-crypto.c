/*
 * QEMU UFS inline crypto front end
 *
 * Maps UFSHCI's crypto registers (CAP.CS, HCE.CGE, CCAP, x-CRYPTOCAP,
 * x-CRYPTOCFG) and the UTRD crypto fields (CE, CCI, DUNL/DUNU; identical in
 * legacy UTRDs and MCQ SQ entries) onto the inline crypto engine.
 *
 * Data path: an admitted CE READ/WRITE is lent a whole-request buffer in
 * the engine's staging memory (device-private RAM in its own address
 * space) and scsi-disk gets that as the request's scatter/gather list, so
 * it moves the request in one zero-copy I/O like a CE=0 one.  A WRITE is
 * encrypted from the PRDT into the staging buffer before it is issued; a
 * READ is decrypted from the staging buffer into the PRDT when scsi-disk
 * completes it, before the response is sent.  The staging buffer only ever
 * holds ciphertext, and a WRITE only reads the guest's buffer.
 *
 * When staging memory is off or has no room, the request gets no
 * scatter/gather list instead: scsi-disk moves it through its own bounce
 * buffer in chunks of at most 128 KiB and calls transfer_data for each,
 * where the chunk is transformed between the PRDT and that buffer.
 * Requests without CE keep the PRDT as their list.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "scsi/constants.h"
#include "system/dma.h"
#include "hw/scsi/scsi.h"
#include "trace.h"
#include "ufs-crypto.h"

/* UTRD header crypto fields (UFSHCI 4.0, 6.1.1) */
REG32(UTRD_DW0, 0x0)
    FIELD(UTRD_DW0, CCI, 0, 8)
    FIELD(UTRD_DW0, CE, 23, 1)

static bool ufs_crypto_on(UfsHc *u)
{
    return inline_crypto_realized(&u->crypto);
}

void ufs_crypto_instance_init(UfsHc *u)
{
    inline_crypto_add_properties(&u->crypto, OBJECT(u));
    inline_crypto_add_staging_property(&u->crypto, OBJECT(u));
}

bool ufs_crypto_realize(UfsHc *u, Error **errp)
{
    if (!inline_crypto_realize(&u->crypto, DEVICE(u), ICE_FRONTEND_UFS,
                               ufs_crypto_cfgptr(u),
                               ARRAY_SIZE(u->reg.rsvd9), errp)) {
        return false;
    }
    if (!inline_crypto_staging_realize(&u->crypto, DEVICE(u), errp)) {
        inline_crypto_unrealize(&u->crypto);
        return false;
    }
    return true;
}

void ufs_crypto_init_hc(UfsHc *u)
{
    InlineCrypto *ic = &u->crypto;
    uint64_t cfg_end;

    if (!ufs_crypto_on(u)) {
        return;
    }
    u->reg.cap = FIELD_DP32(u->reg.cap, CAP, CS, 1);
    u->reg.ccap = inline_crypto_ccap(ic);
    /* x-CRYPTOCAP[i] lives at 0x104 + 4 * i, i.e. in rsvd9 */
    QEMU_BUILD_BUG_ON(offsetof(UfsReg, rsvd9) != 0x104);
    for (unsigned i = 0; i < ARRAY_SIZE(u->reg.rsvd9); i++) {
        u->reg.rsvd9[i] = inline_crypto_cap_reg(ic, i);
    }
    cfg_end = ufs_crypto_cfgptr(u) * 0x100 + inline_crypto_cfg_size(ic);
    u->reg_size = pow2ceil(MAX(u->reg_size, cfg_end));
}

void ufs_crypto_exit(UfsHc *u)
{
    if (u->crypto_cfg.container) {
        memory_region_del_subregion(&u->iomem, &u->crypto_cfg);
    }
    inline_crypto_unrealize(&u->crypto);
}

void ufs_crypto_reset(UfsHc *u)
{
    inline_crypto_reset(&u->crypto);
}

void ufs_crypto_write_hce(UfsHc *u, uint32_t data)
{
    if (!ufs_crypto_on(u)) {
        return;
    }
    u->reg.hce = FIELD_DP32(u->reg.hce, HCE, CGE,
                            FIELD_EX32(data, HCE, CGE));
    inline_crypto_set_enable(&u->crypto, FIELD_EX32(u->reg.hce, HCE, HCE),
                             FIELD_EX32(u->reg.hce, HCE, CGE));
}

/*
 * The x-CRYPTOCFG array is a region of its own inside BAR0, 32-bit accesses
 * only (UFSHCI 4.0 5.2: registers are dwords), so that a byte or word
 * access can never land on the wrong bits of a dword: the memory core
 * refuses it (a read returns 0, a write is dropped).  Its writes are traced
 * here, not by ufs_mmio_write(), so that key material never reaches a
 * trace: a CRYPTOKEY dword is traced without its value.
 */
static uint64_t ufs_crypto_cfg_read(void *opaque, hwaddr addr, unsigned size)
{
    UfsHc *u = opaque;
    uint64_t value = inline_crypto_cfg_read(&u->crypto, addr);

    trace_ufs_mmio_read(ufs_crypto_cfgptr(u) * 0x100 + addr, value, size);
    return value;
}

static void ufs_crypto_cfg_write(void *opaque, hwaddr addr, uint64_t data,
                                 unsigned size)
{
    UfsHc *u = opaque;

    if (addr % INLINE_CRYPTO_CFG_SIZE < INLINE_CRYPTO_KEY_DWORDS * 4) {
        trace_ufs_crypto_key_write(ufs_crypto_cfgptr(u) * 0x100 + addr);
    } else {
        trace_ufs_crypto_cfg_write(ufs_crypto_cfgptr(u) * 0x100 + addr, data);
    }
    inline_crypto_cfg_write(&u->crypto, addr, data);
}

static const MemoryRegionOps ufs_crypto_cfg_ops = {
    .read = ufs_crypto_cfg_read,
    .write = ufs_crypto_cfg_write,
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

void ufs_crypto_init_pci(UfsHc *u)
{
    if (!ufs_crypto_on(u)) {
        return;
    }
    memory_region_init_io(&u->crypto_cfg, OBJECT(u), &ufs_crypto_cfg_ops, u,
                          "ufs-crypto-cfg", inline_crypto_cfg_size(&u->crypto));
    memory_region_add_subregion(&u->iomem, ufs_crypto_cfgptr(u) * 0x100,
                                &u->crypto_cfg);
}

void ufs_crypto_clear_req(UfsRequest *req)
{
    inline_crypto_req_end(&req->hc->crypto, &req->crypto);
    memset(&req->crypto, 0, sizeof(req->crypto));
    req->crypto.slot = -1;
}

/* The commands whose data the engine encrypts / decrypts */
static bool ufs_crypto_is_rw(uint8_t opcode)
{
    switch (opcode) {
    case READ_6:
    case READ_10:
    case READ_12:
    case READ_16:
    case WRITE_6:
    case WRITE_10:
    case WRITE_12:
    case WRITE_16:
    case WRITE_VERIFY_10:
    case WRITE_VERIFY_12:
    case WRITE_VERIFY_16:
        return true;
    default:
        return false;
    }
}

static void ufs_crypto_log_io(UfsRequest *req, SCSIRequest *scsi_req,
                              uint64_t bytes, uint8_t ocs, int status)
{
    uint32_t bs = scsi_req->dev->blocksize ? scsi_req->dev->blocksize : 1;
    char queue[16];
    InlineCryptoIo io = {
        .req = &req->crypto,
        .lun = req->req_upiu.header.lun,
        .write = scsi_req->cmd.mode == SCSI_XFER_TO_DEV,
        .opcode = scsi_req->cmd.buf[0],
        .lba = scsi_req->cmd.lba,
        .blocks = scsi_req->cmd.xfer / bs,
        .bytes = bytes,
        .block_size = bs,
        .ocs = ocs,
        .status = status,
        .queue = queue,
    };

    if (ufs_mcq_req(req)) {
        snprintf(queue, sizeof(queue), "mcq:%u", req->sq->sqid);
    } else {
        snprintf(queue, sizeof(queue), "sdb");
    }
    inline_crypto_log_io(&req->hc->crypto, &io);
}

/*
 * Admission of a SCSI command, before it is issued.  Returns the OCS to
 * complete the request with, or UFS_OCS_SUCCESS to go on.
 */
uint8_t ufs_crypto_prepare(UfsRequest *req, SCSIRequest *scsi_req)
{
    UfsHc *u = req->hc;
    InlineCryptoReq *r = &req->crypto;
    uint32_t dw0 = le32_to_cpu(req->utrd.header.dword_0);
    uint8_t opcode = scsi_req->cmd.buf[0];
    uint64_t xfer = scsi_req->cmd.xfer;
    uint64_t dun;
    uint8_t ocs;

    ufs_crypto_clear_req(req);
    if (!ufs_crypto_on(u)) {
        return UFS_OCS_SUCCESS;
    }
    r->ce = FIELD_EX32(dw0, UTRD_DW0, CE);
    r->slot = FIELD_EX32(dw0, UTRD_DW0, CCI);
    dun = ((uint64_t)le32_to_cpu(req->utrd.header.dword_3) << 32) |
          le32_to_cpu(req->utrd.header.dword_1);
    r->dun = dun;

    if (!ufs_crypto_is_rw(opcode)) {
        if (r->ce && scsi_req->cmd.mode == SCSI_XFER_TO_DEV) {
            /* e.g. WRITE SAME, UNMAP: data the engine cannot encrypt */
            r->err = ICE_ERR_OPCODE;
            ocs = UFS_OCS_INVALID_CRYPTO_CONFIG;
            goto refuse;
        }
        /* non-data and data-in commands run without crypto */
        r->ce = false;
        return UFS_OCS_SUCCESS;
    }

    if (xfer && (!req->sg || (r->ce && req->data_len < xfer))) {
        r->err = ICE_ERR_NO_PRDT;
        ocs = UFS_OCS_MISMATCH_DATA_BUF_SIZE;
        goto refuse;
    }
    if (!r->ce) {
        return UFS_OCS_SUCCESS;
    }

    r->err = inline_crypto_req_begin(&u->crypto, r, r->slot, dun,
                                     scsi_req->cmd.lba *
                                     scsi_req->dev->blocksize, xfer);
    switch (r->err) {
    case ICE_OK:
        if (!xfer || !inline_crypto_req_stage(&u->crypto, r, DEVICE(u),
                                              xfer)) {
            return UFS_OCS_SUCCESS;     /* chunked path (transfer_data) */
        }
        if (scsi_req->cmd.mode != SCSI_XFER_TO_DEV) {
            return UFS_OCS_SUCCESS;     /* decrypted on completion */
        }
        /* The whole WRITE is encrypted before anything is issued */
        r->err = inline_crypto_req_staged_transform(&u->crypto, r, req->sg,
                                                    xfer, true);
        if (r->err == ICE_OK) {
            return UFS_OCS_SUCCESS;
        }
        ocs = UFS_OCS_GENERAL_CRYPTO_ERROR;
        break;
    case ICE_ERR_INJECTED:
        ocs = UFS_OCS_GENERAL_CRYPTO_ERROR;
        if (r->fatal) {
            u->reg.is = FIELD_DP32(u->reg.is, IS, CEFES, 1);
        }
        break;
    default:
        ocs = UFS_OCS_INVALID_CRYPTO_CONFIG;
        break;
    }

refuse:
    trace_ufs_err_crypto_refused(req->slot, r->ce ? r->slot : -1, opcode, ocs,
                                 inline_crypto_error_str(r->err));
    ufs_crypto_log_io(req, scsi_req, 0, ocs, -1);
    inline_crypto_req_end(&u->crypto, r);
    return ocs;
}

QEMUSGList *ufs_crypto_sg_list(UfsRequest *req)
{
    InlineCryptoReq *r = &req->crypto;

    if (r->staged) {
        return &r->staging;
    }
    /* no list: scsi-disk's bounce buffer and transfer_data */
    return r->active ? NULL : req->sg;
}

void ufs_crypto_transfer_data(UfsRequest *req, SCSIRequest *scsi_req,
                              uint32_t len)
{
    InlineCrypto *ic = &req->hc->crypto;
    InlineCryptoReq *r = &req->crypto;
    uint8_t *buf = scsi_req_get_buf(scsi_req);
    bool write = scsi_req->cmd.mode == SCSI_XFER_TO_DEV;
    InlineCryptoError err = ICE_OK;

    if (!r->active) {
        err = ICE_ERR_DMA;
    } else {
        /*
         * WRITE: plaintext from the PRDT, ciphertext into the bounce buffer
         * (the guest buffer stays); READ: ciphertext from the bounce buffer,
         * plaintext into the PRDT.
         */
        err = inline_crypto_req_transform_sg(ic, r, req->sg, buf, len, write);
    }

    if (err != ICE_OK) {
        /*
         * Never let this chunk reach the medium: cancel the SCSI request
         * before scsi-disk writes its buffer; ufs_crypto_cancel() then
         * completes the UFS request.  Earlier chunks of the same command
         * were written encrypted.
         */
        trace_ufs_err_crypto_transfer(req->slot, r->slot, r->offset, len,
                                      inline_crypto_error_str(err));
        r->err = err;
        r->failing = true;
        scsi_req_cancel(scsi_req);
        return;
    }
    r->offset += len;
    scsi_req_continue(scsi_req);
}

bool ufs_crypto_cancel(UfsRequest *req, SCSIRequest *scsi_req)
{
    InlineCryptoReq *r = &req->crypto;

    if (!r->failing) {
        return false;
    }
    ufs_crypto_log_io(req, scsi_req, r->offset, UFS_OCS_GENERAL_CRYPTO_ERROR,
                      -1);
    inline_crypto_req_end(&req->hc->crypto, r);
    ufs_build_upiu_header(req, UFS_UPIU_TRANSACTION_RESPONSE, 0,
                          UFS_COMMAND_RESULT_FAIL, 0, 0);
    ufs_complete_req_ocs(req, UFS_OCS_GENERAL_CRYPTO_ERROR);
    return true;
}

uint8_t ufs_crypto_complete(UfsRequest *req, SCSIRequest *scsi_req,
                            uint32_t transferred)
{
    InlineCryptoReq *r = &req->crypto;
    uint8_t ocs = UFS_OCS_SUCCESS;

    if (!ufs_crypto_on(req->hc)) {
        return UFS_OCS_SUCCESS;
    }
    /*
     * A staged READ that succeeded: decrypt into the PRDT before the
     * response goes out.  A failed one leaves the guest buffer alone.
     */
    if (r->staged && scsi_req->cmd.mode == SCSI_XFER_FROM_DEV &&
        scsi_req->status == GOOD && transferred) {
        r->err = inline_crypto_req_staged_transform(
            &req->hc->crypto, r, req->sg,
            QEMU_ALIGN_DOWN(transferred, r->du_size), false);
        if (r->err != ICE_OK) {
            trace_ufs_err_crypto_transfer(req->slot, r->slot, 0, transferred,
                                          inline_crypto_error_str(r->err));
            ocs = UFS_OCS_GENERAL_CRYPTO_ERROR;
            ufs_build_upiu_header(req, UFS_UPIU_TRANSACTION_RESPONSE, 0,
                                  UFS_COMMAND_RESULT_FAIL, 0, 0);
        }
    }
    if (ufs_crypto_is_rw(scsi_req->cmd.buf[0])) {
        ufs_crypto_log_io(req, scsi_req, transferred, ocs, scsi_req->status);
    }
    inline_crypto_req_end(&req->hc->crypto, r);
    return ocs;
}
