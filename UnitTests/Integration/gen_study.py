#!/usr/bin/python3
"""Write a synthetic but valid DICOM study (Part-10 files) for the tests and the demo.

Module use:
    from gen_study import generate_study
    study = generate_study("/tmp/out", series=2, instances=5, patient_name="Demo^Patient")
    study["study_uid"], study["instances"]  # [(path, sop_instance_uid), ...]

CLI use:
    /usr/bin/python3 gen_study.py OUTDIR --series 3 --instances 50 --patient-name "Doe^Jane" \
        --size-kb 10 --charset ISO_IR_192 --modality CT [--study-uid X]

Speed: one dataset is built per series and only the per-instance elements change, so
thousands of small files are written in a few seconds.
"""

import argparse
import datetime
import json
import os
import random
import re
import sys

import pydicom
import pydicom.charset
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

SOP_CLASS_BY_MODALITY = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_HEADER_ALLOWANCE = 1200  # bytes of preamble, meta and tags around PixelData (approx.)
_COLUMNS = 64
_PYDICOM_3 = int(pydicom.__version__.split(".")[0]) >= 3


def normalize_charset(charset):
    """DICOM defined term for a SpecificCharacterSet; "ISO_IR_192" is accepted for "ISO_IR 192".

    Raises ValueError for a term pydicom cannot encode, rather than writing wrong bytes.
    """
    if not charset:
        return None
    terms = [re.sub(r"^ISO_IR_(\d+)$", r"ISO_IR \1", term.strip()) for term in charset.split("\\")]
    unknown = [term for term in terms if term and term not in pydicom.charset.python_encoding]
    if unknown:
        raise ValueError("unknown SpecificCharacterSet term(s): %s" % ", ".join(unknown))
    return terms[0] if len(terms) == 1 else terms


def _pixel_bytes(size_kb, seed):
    """Rows, columns and 16-bit pixel bytes so that a file is about size_kb KiB."""
    pixels = max(1, (int(size_kb * 1024) - _HEADER_ALLOWANCE) // 2)
    rows = max(1, -(-pixels // _COLUMNS))  # ceiling division
    # Pseudo-random 12-bit values: incompressible like real images, reproducible by seed.
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(rows * _COLUMNS * 2))
    data[1::2] = bytes(b & 0x0F for b in data[1::2])
    return rows, _COLUMNS, bytes(data)


def base_dataset(study_uid, modality, patient_name, patient_id, charset, accession, description):
    """The elements shared by every instance of the study (gen_diffusion builds on it too)."""
    sop_class = SOP_CLASS_BY_MODALITY.get(modality.upper(), SECONDARY_CAPTURE)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    if not _PYDICOM_3:  # pydicom 2.x needs the encoding on the dataset itself
        ds.is_little_endian = True
        ds.is_implicit_VR = False
    charset = normalize_charset(charset)
    if charset:
        ds.SpecificCharacterSet = charset
    now = datetime.datetime.now()
    ds.SOPClassUID = sop_class
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.AccessionNumber = accession
    ds.Modality = modality.upper()
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.InstitutionName = "Integration Test Hospital"
    ds.StudyDescription = description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyID = "1"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if ds.Modality == "CT":
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
    return ds


def save_part10(ds, path):
    """Write a conformant Part-10 file whatever pydicom major version is installed."""
    if _PYDICOM_3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, write_like_original=False)


def generate_study(outdir, series=1, instances=10, patient_name="Test^Patient",
                   size_kb=10, charset=None, modality="CT", study_uid=None,
                   patient_id=None, accession_number=None, study_description=None, seed=0,
                   frames=1, institution=None, birth_date=None, private_identity=False,
                   burned_in=None):
    """Write `series` x `instances` files under outdir/seriesN/IMxxxxx.dcm.

    frames > 1: multiframe instances of `frames` frames, each frame size_kb / frames.
    institution, birth_date: InstitutionName and PatientBirthDate instead of the defaults.
    private_identity: also write the patient's name, id, birth date, accession number and
    institution in a private block (group 0009, creator "CLOUDTEST"), as some devices do.
    burned_in: BurnedInAnnotation ("YES" / "NO"), absent when None.

    Returns {"study_uid", "series_uids", "patient_id", "instances": [(path, sop_uid), ...]}.
    """
    study_uid = study_uid or generate_uid()
    patient_id = patient_id or "PID-" + study_uid[-8:]
    accession_number = accession_number or "ACC" + study_uid[-6:]
    description = study_description or "Synthetic %s study" % modality.upper()
    ds = base_dataset(study_uid, modality, patient_name, patient_id, charset,
                       accession_number, description)
    if institution is not None:
        ds.InstitutionName = institution
    if birth_date is not None:
        ds.PatientBirthDate = birth_date
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    if private_identity:
        block = ds.private_block(0x0009, "CLOUDTEST", create=True)
        for offset, value in enumerate((patient_name, patient_id, ds.PatientBirthDate,
                                        accession_number, ds.InstitutionName), start=1):
            block.add_new(offset, "LO", str(value))
    rows, columns, pixels = _pixel_bytes(size_kb / frames, seed)
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
        pixels = pixels * frames
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW"

    result = {"study_uid": study_uid, "series_uids": [], "patient_id": patient_id,
              "instances": []}
    for series_number in range(1, series + 1):
        series_dir = os.path.join(outdir, "series%d" % series_number)
        os.makedirs(series_dir, exist_ok=True)
        series_uid = generate_uid()
        result["series_uids"].append(series_uid)
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = generate_uid()
        ds.SeriesNumber = series_number
        ds.SeriesDescription = "Series %d" % series_number
        for instance_number in range(1, instances + 1):
            sop_uid = generate_uid()
            ds.SOPInstanceUID = sop_uid
            ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.InstanceNumber = instance_number
            ds.ImagePositionPatient = [0, 0, instance_number]
            ds.SliceLocation = instance_number
            path = os.path.join(series_dir, "IM%05d.dcm" % instance_number)
            save_part10(ds, path)
            result["instances"].append((path, sop_uid))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a synthetic DICOM study.")
    parser.add_argument("outdir")
    parser.add_argument("--series", type=int, default=1)
    parser.add_argument("--instances", type=int, default=10, help="instances per series")
    parser.add_argument("--patient-name", default="Test^Patient")
    parser.add_argument("--patient-id")
    parser.add_argument("--size-kb", type=float, default=10, help="approximate file size")
    parser.add_argument("--charset", help="SpecificCharacterSet, e.g. ISO_IR_192 or 'ISO_IR 100'")
    parser.add_argument("--modality", default="CT")
    parser.add_argument("--study-uid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pixel values")
    args = parser.parse_args(argv)
    study = generate_study(args.outdir, series=args.series, instances=args.instances,
                           patient_name=args.patient_name, size_kb=args.size_kb,
                           charset=args.charset, modality=args.modality,
                           study_uid=args.study_uid, patient_id=args.patient_id, seed=args.seed)
    print(json.dumps({"study_uid": study["study_uid"], "series_uids": study["series_uids"],
                      "instances": len(study["instances"]), "outdir": args.outdir}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
