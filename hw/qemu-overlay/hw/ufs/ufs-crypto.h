/*
 * QEMU UFS inline crypto front end (UFSHCI 4.0 crypto registers and UTRD
 * crypto fields) on top of the controller-agnostic engine in
 * hw/block/inline-crypto*.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_UFS_UFS_CRYPTO_H
#define HW_UFS_UFS_CRYPTO_H

#include "ufs.h"

/*
 * x-CRYPTOCFG array at CFGPTR * 0x100, clear of the MCQ regions: 0x2000 by
 * default; 0x3000 with pci-identity=intel-mtl, whose MCQ operation registers
 * sit at 0x2800-0x2dff.
 */
#define UFS_CRYPTO_CFGPTR 0x20
#define UFS_CRYPTO_CFGPTR_INTEL_MTL 0x30

static inline unsigned ufs_crypto_cfgptr(const UfsHc *u)
{
    return u->params.intel_mtl ? UFS_CRYPTO_CFGPTR_INTEL_MTL
                               : UFS_CRYPTO_CFGPTR;
}

/* Controller side (ufs.c) */
void ufs_crypto_instance_init(UfsHc *u);
bool ufs_crypto_realize(UfsHc *u, Error **errp);
void ufs_crypto_init_hc(UfsHc *u);
void ufs_crypto_exit(UfsHc *u);
void ufs_crypto_reset(UfsHc *u);
void ufs_crypto_write_hce(UfsHc *u, uint32_t data);
/* After BAR0 (u->iomem) exists: maps the x-CRYPTOCFG array into it */
void ufs_crypto_init_pci(UfsHc *u);
void ufs_crypto_clear_req(UfsRequest *req);

/* Data path (lu.c) */
uint8_t ufs_crypto_prepare(UfsRequest *req, SCSIRequest *scsi_req);
QEMUSGList *ufs_crypto_sg_list(UfsRequest *req);
void ufs_crypto_transfer_data(UfsRequest *req, SCSIRequest *scsi_req,
                              uint32_t len);
bool ufs_crypto_cancel(UfsRequest *req, SCSIRequest *scsi_req);
uint8_t ufs_crypto_complete(UfsRequest *req, SCSIRequest *scsi_req,
                            uint32_t transferred);

#endif /* HW_UFS_UFS_CRYPTO_H */
