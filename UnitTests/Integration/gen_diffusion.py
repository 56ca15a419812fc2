#!/usr/bin/python3
"""Write a synthetic diffusion-weighted MR series (Part-10 files) that dcm2niix turns into
a NIfTI image with its .bval and .bvec.

Module use:
    from gen_diffusion import generate_diffusion
    series = generate_diffusion("/tmp/out", bvals=[0, 1000, 1000, 1000], study_uid=uid)
    series["bvals"], series["bvecs"], series["instances"]  # [(path, sop_instance_uid), ...]

CLI use:
    /usr/bin/python3 gen_diffusion.py OUTDIR [--bvals 0,1000,1000,...] [--slices 4]
        [--rows 32] [--columns 32] [--study-uid X] [--series-uid Y] [--series-number 7]
    prints one JSON line: {"study_uid", "series_uid", "bvals", "bvecs", "instances": [[path, sop]], ...}

What dcm2niix needs (found by experiment with dcm2niix v1.0.20220720, Debian 12): classic
MR Image Storage files, one per slice and volume, each with the standard top-level
DiffusionBValue (0018,9087) and DiffusionGradientOrientation (0018,9089), and
Manufacturer "Philips": for Philips classic MR, dcm2niix reads exactly these two standard
tags. Slices of one volume share AcquisitionNumber and TemporalPositionIdentifier but
differ in ImagePositionPatient; volumes repeat the same positions. Pixel values follow
S = S0 * exp(-b * D(direction)), so the volumes differ like a real acquisition.
"""

import argparse
import json
import math
import os
import struct
import sys

from pydicom.uid import generate_uid

import gen_study

# Six non-collinear directions: the minimum for a diffusion tensor.
DEFAULT_DIRECTIONS = [
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.70710678, 0.70710678, 0.0),
    (0.70710678, 0.0, 0.70710678),
    (0.0, 0.70710678, 0.70710678),
]
DEFAULT_BVALS = [0] + [1000] * len(DEFAULT_DIRECTIONS)


def _directions_for(bvals, directions):
    """One unit vector per b-value: (0,0,0) for b=0, the given directions cycled otherwise."""
    directions = directions or DEFAULT_DIRECTIONS
    result = []
    k = 0
    for b in bvals:
        if b == 0:
            result.append((0.0, 0.0, 0.0))
        else:
            x, y, z = directions[k % len(directions)]
            norm = math.sqrt(x * x + y * y + z * z) or 1.0
            result.append((x / norm, y / norm, z / norm))
            k += 1
    return result


def _slice_pixels(rows, columns, slice_index, b, direction):
    """16-bit little-endian pixels: a bright disc whose signal decays with b."""
    # An anisotropic diffusivity (faster along x) makes directions distinguishable.
    dx, dy, dz = direction
    diffusivity = 0.0007 + 0.0012 * dx * dx + 0.0004 * dy * dy + 0.0002 * dz * dz
    attenuation = math.exp(-b * diffusivity)
    cy, cx = (rows - 1) / 2.0, (columns - 1) / 2.0
    radius = min(rows, columns) * 0.4
    values = []
    for r in range(rows):
        for c in range(columns):
            inside = (r - cy) ** 2 + (c - cx) ** 2 <= radius * radius
            base = 1000 + 40 * slice_index if inside else 20
            values.append(int(round(base * attenuation)) + (r + c) % 3)
    return struct.pack("<%dH" % len(values), *values)


def _base_dataset(study_uid, series_uid, series_number, patient_name, patient_id,
                  manufacturer, rows, columns, slice_thickness):
    """gen_study's MR dataset with what a diffusion acquisition adds or differs in."""
    ds = gen_study.base_dataset(study_uid, "MR", patient_name, patient_id, None,
                                "ACC" + study_uid[-6:], "Synthetic diffusion study")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = "Synthetic"
    ds.SeriesDescription = "DWI synthetic"
    ds.ProtocolName = "DWI_synthetic"
    ds.ScanningSequence = "EP"
    ds.SequenceVariant = "SK"
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = slice_thickness
    ds.SpacingBetweenSlices = slice_thickness
    ds.RepetitionTime = 5000
    ds.EchoTime = 80
    ds.EchoNumbers = 1
    ds.MagneticFieldStrength = 3
    ds.FlipAngle = 90
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.PixelSpacing = [2, 2]
    ds.Rows, ds.Columns = rows, columns
    ds.BitsStored = 16
    ds.HighBit = 15
    if manufacturer.lower().startswith("philips"):
        # Philips' slice orientation: without it dcm2niix warns that it cannot validate
        # the gradient vectors.
        block = ds.private_block(0x2001, "Philips Imaging DD 001", create=True)
        block.add_new(0x0B, "CS", "TRANSVERSAL")
    return ds


def generate_diffusion(outdir, bvals=None, directions=None, slices=4, rows=32, columns=32,
                       study_uid=None, series_uid=None, series_number=1,
                       patient_name="Diffusion^Test", patient_id=None, manufacturer="Philips",
                       slice_thickness=3.0):
    """Write len(bvals) volumes x `slices` slices under outdir as IMxxxxx.dcm.

    Returns {"study_uid", "series_uid", "bvals", "bvecs", "slices", "outdir",
    "instances": [(path, sop_uid), ...]} with instances in InstanceNumber order.
    """
    bvals = list(DEFAULT_BVALS if bvals is None else bvals)
    if not bvals or slices < 1 or rows < 1 or columns < 1:
        raise ValueError("need at least one b-value, one slice, one row and one column")
    if any(b < 0 for b in bvals):
        raise ValueError("b-values cannot be negative")
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    patient_id = patient_id or "PID-" + study_uid[-8:]
    bvecs = _directions_for(bvals, directions)
    os.makedirs(outdir, exist_ok=True)
    ds = _base_dataset(study_uid, series_uid, series_number, patient_name, patient_id,
                       manufacturer, rows, columns, slice_thickness)
    origin_x = -(columns - 1) * 1.0  # centres the matrix (2 mm pixels) on the isocentre
    origin_y = -(rows - 1) * 1.0

    instances = []
    number = 0
    for volume, (b, direction) in enumerate(zip(bvals, bvecs)):
        # Volumes acquired one after the other: a plausible, increasing time.
        acquisition_time = "%02d%02d%02d.000" % (10, volume // 12, (volume * 5) % 60)
        for s in range(slices):
            number += 1
            sop_uid = generate_uid()
            ds.SOPInstanceUID = sop_uid
            ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.InstanceNumber = number
            ds.AcquisitionNumber = volume + 1
            ds.TemporalPositionIdentifier = volume + 1
            ds.NumberOfTemporalPositions = len(bvals)
            ds.AcquisitionTime = ds.ContentTime = acquisition_time
            z = s * slice_thickness
            ds.ImagePositionPatient = [origin_x, origin_y, z]
            ds.SliceLocation = z
            ds.DiffusionBValue = float(b)
            ds.DiffusionGradientOrientation = [float(v) for v in direction]
            ds.DiffusionDirectionality = "NONE" if b == 0 else "DIRECTIONAL"
            ds.PixelData = _slice_pixels(rows, columns, s, b, direction)
            ds["PixelData"].VR = "OW"
            path = os.path.join(outdir, "IM%05d.dcm" % number)
            gen_study.save_part10(ds, path)
            instances.append((path, sop_uid))
    return {"study_uid": study_uid, "series_uid": series_uid, "bvals": bvals,
            "bvecs": [list(v) for v in bvecs], "slices": slices, "outdir": outdir,
            "instances": instances}


def _number_list(text):
    return [float(t) if "." in t else int(t) for t in text.split(",") if t.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a synthetic diffusion MR series.")
    parser.add_argument("outdir")
    parser.add_argument("--bvals", type=_number_list, default=None,
                        help="comma-separated b-values, one volume each (default 0 + 6 x 1000)")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--columns", type=int, default=32)
    parser.add_argument("--study-uid")
    parser.add_argument("--series-uid")
    parser.add_argument("--series-number", type=int, default=1)
    parser.add_argument("--patient-name", default="Diffusion^Test")
    parser.add_argument("--patient-id")
    parser.add_argument("--manufacturer", default="Philips")
    args = parser.parse_args(argv)
    series = generate_diffusion(args.outdir, bvals=args.bvals, slices=args.slices,
                                rows=args.rows, columns=args.columns, study_uid=args.study_uid,
                                series_uid=args.series_uid, series_number=args.series_number,
                                patient_name=args.patient_name, patient_id=args.patient_id,
                                manufacturer=args.manufacturer)
    print(json.dumps(series))
    return 0


if __name__ == "__main__":
    sys.exit(main())
