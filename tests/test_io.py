"""Tests for ferrogym.workflows.io: reading images and positions, and every refusal."""

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ferrogym.workflows.errors import InputError
from ferrogym.workflows.io import (
    MIN_IMAGE_SIDE,
    MIN_POSITIONS,
    ImageData,
    PositionsData,
    load_image,
    load_positions,
    validate_image,
    validate_positions,
)

PIXEL_PM = 12.5


def shared_data_file(name: str) -> Path:
    """Path of a file in ../shared/data; skip the test when the folder or file is absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / name
    if not path.is_file():
        pytest.skip(f"real test data {path} not available (needs the shared/data folder)")
    return path


def lattice_image(shape=(40, 48)) -> np.ndarray:
    """A small image with lattice-like contrast."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return 10.0 + np.cos(2 * np.pi * rows / 8) * np.cos(2 * np.pi * cols / 8)


def signal_dict(data, scale, units, title="") -> dict:
    """A signal dictionary complete enough for rsciio's hspy and emd writers."""
    axes = [
        {"name": name, "size": size, "scale": scale, "offset": 0.0, "units": units,
         "navigate": False}
        for name, size in zip(("y", "x"), data.shape)
    ]
    return {
        "data": data,
        "axes": axes,
        "metadata": {"General": {"title": title}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": False},
        "learning_results": {},
        "models": {},
        "package_info": {"name": "ferrogym-tests", "version": "0"},
    }


def write_hspy(path, data, scale, units) -> Path:
    """Write `data` as a HyperSpy file with the given calibration."""
    from rsciio.hspy import file_writer

    file_writer(str(path), signal_dict(data, scale, units), show_progressbar=False)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write `text` to `path` and return it."""
    path.write_text(text)
    return path


def positions_table(n=12, sublattice=None, delimiter=","):
    """Rows of 'x<d>y[<d>label]' text for n positions on a line, and the expected xy."""
    xy = np.column_stack([np.arange(n) * 1.5 + 0.25, np.arange(n) * -0.5 + 3.0])
    labels = sublattice or [None] * n
    lines = [
        delimiter.join([repr(float(x)), repr(float(y))] + ([] if label is None else [label]))
        for (x, y), label in zip(xy, labels)
    ]
    return lines, xy


# ----------------------------------------------------------------------------- image reading


def test_npy_round_trip_gives_float64_c_contiguous_copy_without_pixel_size(tmp_path):
    stored = np.asfortranarray(lattice_image().astype(np.float32))
    path = tmp_path / "image.npy"
    np.save(path, stored)

    image = load_image(path)

    assert isinstance(image, ImageData)
    assert image.array.dtype == np.float64 and image.array.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(image.array, stored)
    assert image.pixel_size_pm is None
    assert image.source == str(path)


def test_npy_accepts_string_path_and_integer_data(tmp_path):
    stored = (lattice_image() * 100).astype(np.uint16)
    np.save(tmp_path / "image.npy", stored)
    image = load_image(str(tmp_path / "image.npy"))
    np.testing.assert_array_equal(image.array, stored.astype(np.float64))


def test_tif_written_by_rsciio_keeps_pixel_size(tmp_path):
    from rsciio.tiff import file_writer

    data = lattice_image().astype(np.float32)
    path = tmp_path / "image.tif"
    file_writer(str(path), signal_dict(data, PIXEL_PM / 1000, "nm"))

    image = load_image(path)

    np.testing.assert_array_equal(image.array, data)
    assert image.pixel_size_pm == pytest.approx(PIXEL_PM, rel=1e-6)


@pytest.mark.parametrize(
    ("unit", "scale"),
    [("nm", PIXEL_PM / 1e3), ("micron", PIXEL_PM / 1e6), ("angstrom", PIXEL_PM / 1e2)],
)
def test_imagej_tif_pixel_size_in_any_unit(tmp_path, unit, scale):
    data = lattice_image().astype(np.float32)
    path = tmp_path / "image.tiff"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / scale, 1 / scale),
                     metadata={"unit": unit})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(path)

    np.testing.assert_array_equal(image.array, data)
    assert image.pixel_size_pm == pytest.approx(PIXEL_PM, rel=1e-5)


def test_uncalibrated_tif_has_no_pixel_size_and_no_warning(tmp_path):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, lattice_image().astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).pixel_size_pm is None


@pytest.mark.parametrize("suffix", [".hspy", ".hdf5", ".h5"])
def test_hspy_round_trip_keeps_pixel_size(tmp_path, suffix):
    data = lattice_image()
    path = write_hspy(tmp_path / f"image{suffix}", data, PIXEL_PM / 1000, "nm")

    image = load_image(path)

    np.testing.assert_array_equal(image.array, data)
    assert image.pixel_size_pm == pytest.approx(PIXEL_PM)


def test_emd_round_trip_keeps_pixel_size_in_angstrom(tmp_path):
    from rsciio.emd import file_writer

    data = lattice_image()
    path = tmp_path / "image.emd"
    file_writer(str(path), signal_dict(data, PIXEL_PM / 100, "Å", title="HAADF"))

    image = load_image(path)

    np.testing.assert_array_equal(image.array, data)
    assert image.pixel_size_pm == pytest.approx(PIXEL_PM)


def test_png_reads_grey_values_without_pixel_size(tmp_path):
    import imageio.v3 as iio

    data = (lattice_image() * 20).astype(np.uint8)
    path = tmp_path / "image.png"
    iio.imwrite(path, data)

    image = load_image(path)

    np.testing.assert_array_equal(image.array, data)
    assert image.pixel_size_pm is None


def test_unitless_scale_is_read_as_nm_with_a_warning(tmp_path):
    path = write_hspy(tmp_path / "image.hspy", lattice_image(), PIXEL_PM / 1000, None)
    with pytest.warns(UserWarning, match="no units; assumed nm"):
        image = load_image(path)
    assert image.pixel_size_pm == pytest.approx(PIXEL_PM)


def test_unitless_scale_of_one_means_uncalibrated(tmp_path):
    path = write_hspy(tmp_path / "image.hspy", lattice_image(), 1.0, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).pixel_size_pm is None


def test_reciprocal_units_give_no_pixel_size_with_a_warning(tmp_path):
    path = write_hspy(tmp_path / "pattern.hspy", lattice_image(), 0.05, "1 / nm")
    with pytest.warns(UserWarning, match="not lengths"):
        assert load_image(path).pixel_size_pm is None


def test_non_square_pixels_give_no_pixel_size_with_a_warning(tmp_path):
    from rsciio.hspy import file_writer

    signal = signal_dict(lattice_image(), 0.0125, "nm")
    signal["axes"][0]["scale"] = 0.0150
    file_writer(str(tmp_path / "image.hspy"), signal, show_progressbar=False)
    with pytest.warns(UserWarning, match="not square"):
        assert load_image(tmp_path / "image.hspy").pixel_size_pm is None


def test_file_with_several_signals_gives_first_image_and_warns(tmp_path):
    first, second = lattice_image((32, 40)), lattice_image((20, 24))
    path = tmp_path / "two.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(first.astype(np.float32))
        writer.write(second.astype(np.float32))

    with pytest.warns(UserWarning, match="holds 2 signals; using the first image"):
        image = load_image(path)

    np.testing.assert_array_equal(image.array, first.astype(np.float32))


# ----------------------------------------------------------------------------- stacks and frames


def save_stack(tmp_path, n_frames=3) -> tuple[Path, np.ndarray]:
    """Save an (n_frames, 32, 40) stack whose frames differ; return its path and data."""
    stack = np.stack([lattice_image((32, 40)) + k for k in range(n_frames)])
    path = tmp_path / "stack.npy"
    np.save(path, stack)
    return path, stack


def test_stack_needs_a_frame_and_says_the_valid_range(tmp_path):
    path, _ = save_stack(tmp_path)
    with pytest.raises(InputError, match=r"stack of 3 images, shape \(3, 32, 40\).*frame=k \(--frame k on the "
                                         r"command line\), 0 <= k <= 2"):
        load_image(path)


def test_frame_picks_one_image_of_a_stack(tmp_path):
    path, stack = save_stack(tmp_path)
    np.testing.assert_array_equal(load_image(path, frame=1).array, stack[1])
    np.testing.assert_array_equal(load_image(path, frame=np.int64(2)).array, stack[2])


@pytest.mark.parametrize(("frame", "problem"), [
    (3, "out of range"), (-1, "out of range"), (1.0, "not an integer"),
    (True, "not an integer"), ("1", "not an integer"),
])
def test_frame_out_of_range_or_not_an_integer_is_refused(tmp_path, frame, problem):
    path, _ = save_stack(tmp_path)
    with pytest.raises(InputError, match=rf"{problem} for .*stack of 3 images.*0 <= frame <= 2"):
        load_image(path, frame=frame)


def test_frame_for_a_single_image_is_refused(tmp_path):
    np.save(tmp_path / "image.npy", lattice_image())
    with pytest.raises(InputError, match=r"frame=0 was given.*single 2-D image.*leave frame=None"):
        load_image(tmp_path / "image.npy", frame=0)


def test_tif_stack_frame_selection(tmp_path):
    stack = np.stack([lattice_image((32, 40)) + k for k in range(4)]).astype(np.float32)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, photometric="minisblack")
    with pytest.raises(InputError, match=r"stack of 4 images.*frame=k"):
        load_image(path)
    np.testing.assert_array_equal(load_image(path, frame=3).array, stack[3])


@pytest.mark.parametrize("shape", [(64,), (2, 2, 32, 32)])
def test_one_or_four_dimensional_arrays_are_refused(tmp_path, shape):
    path = tmp_path / "data.npy"
    np.save(path, np.arange(np.prod(shape), dtype=float).reshape(shape))
    with pytest.raises(InputError, match=rf"{len(shape)}-D with shape .*a single 2-D image"):
        load_image(path)


def test_file_without_any_image_is_refused_and_says_what_it_holds(tmp_path):
    from rsciio.hspy import file_writer

    signal = signal_dict(np.arange(50.0), 1.0, None, title="spectrum")
    signal["axes"] = [{"name": "E", "size": 50, "scale": 1.0, "offset": 0.0, "navigate": False}]
    file_writer(str(tmp_path / "spectrum.hspy"), signal, show_progressbar=False)
    with pytest.raises(InputError, match=r"holds no 2-D image \(found: 'spectrum' shape \(50,\)\)"):
        load_image(tmp_path / "spectrum.hspy")


# ----------------------------------------------------------------------------- image content


def test_nan_and_inf_are_counted_and_refused():
    data = lattice_image()
    data[0, 0] = data[3, 5] = np.nan
    data[7, 7] = np.inf
    with pytest.raises(InputError, match=r"2 NaN pixels and 1 infinite pixel out of 1920.*Crop"):
        validate_image(data)


def test_nan_in_file_names_the_file(tmp_path):
    data = lattice_image()
    data[1, 1] = np.nan
    np.save(tmp_path / "holes.npy", data)
    with pytest.raises(InputError, match=r"holes\.npy has 1 NaN pixel and 0 infinite pixels"):
        load_image(tmp_path / "holes.npy")


def test_constant_image_is_refused():
    with pytest.raises(InputError, match=r"constant \(every pixel is 3\).*no contrast"):
        validate_image(np.full((32, 32), 3.0), source="flat")


def test_too_small_image_is_refused():
    assert MIN_IMAGE_SIDE == 16
    with pytest.raises(InputError, match=r"too small: 15 x 40 pixels.*MIN_IMAGE_SIDE = 16"):
        validate_image(lattice_image((15, 40)))
    assert validate_image(lattice_image((16, 16))).shape == (16, 16)


def test_colour_image_is_refused(tmp_path):
    import imageio.v3 as iio

    rgb = np.zeros((32, 40, 3), dtype=np.uint8)
    rgb[..., 0] = (lattice_image((32, 40)) * 20).astype(np.uint8)
    rgb[..., 2] = 255 - rgb[..., 0]
    iio.imwrite(tmp_path / "colour.png", rgb)
    with pytest.raises(InputError, match=r"colour \(RGB\) image"):
        load_image(tmp_path / "colour.png")


def test_complex_and_text_arrays_are_refused():
    with pytest.raises(InputError, match=r"complex values.*np\.abs"):
        validate_image(lattice_image().astype(complex))
    with pytest.raises(InputError, match=r"not numeric"):
        validate_image(np.full((32, 32), "a"))


def test_validate_image_returns_a_c_contiguous_float64_copy():
    data = lattice_image().T  # a non-contiguous view
    image = validate_image(data)
    assert image.dtype == np.float64 and image.flags["C_CONTIGUOUS"]
    image[0, 0] = -1.0
    assert data[0, 0] != -1.0


def test_validate_image_stack_says_how_to_pick_a_frame():
    with pytest.raises(InputError, match=r"my stack is a stack of 2 images.*array\[k\]"):
        validate_image(np.stack([lattice_image()] * 2), source="my stack")


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(16, 40), st.integers(16, 40)),
              elements=st.floats(-1e6, 1e6)))
def test_validate_image_accepts_any_finite_non_constant_image(data):
    if data.min() == data.max():
        with pytest.raises(InputError, match="constant"):
            validate_image(data)
    else:
        np.testing.assert_array_equal(validate_image(data), data)


# ----------------------------------------------------------------------------- file problems


@pytest.mark.parametrize("loader", [load_image, load_positions])
def test_missing_file_names_the_path(tmp_path, loader):
    path = tmp_path / "nowhere.npy"
    with pytest.raises(InputError, match=rf"{re.escape(str(path))}' does not exist"):
        loader(path)


def test_directory_is_refused(tmp_path):
    with pytest.raises(InputError, match="is a directory, not a file"):
        load_image(tmp_path)


def test_unknown_image_extension_lists_the_supported_ones(tmp_path):
    path = write_text(tmp_path / "image.xyz", "1 2 3")
    with pytest.raises(InputError, match=r"unsupported extension '\.xyz'.*\.npy, \.tif, \.tiff, "
                                         r"\.hspy.*\.dm3.*\.emd.*\.ser.*\.mrc"):
        load_image(path)


def test_unknown_positions_extension_lists_the_supported_ones(tmp_path):
    path = write_text(tmp_path / "positions.json", "[]")
    with pytest.raises(InputError, match=r"unsupported extension '\.json'.*\.npy, \.csv, \.txt"):
        load_positions(path)


@pytest.mark.parametrize(("name", "reader"), [
    ("broken.hspy", "HyperSpy HDF5"),
    ("broken.dm3", "Gatan DigitalMicrograph"),
    ("broken.tif", "TIFF"),
])
def test_unreadable_file_wraps_the_reader_error(tmp_path, name, reader):
    path = tmp_path / name
    path.write_bytes(b"this is not a microscope file" * 10)
    with pytest.raises(InputError, match=rf"could not read .*{name}' with RosettaSciIO's "
                                         rf"{reader} reader") as info:
        load_image(path)
    assert info.value.__cause__ is not None


def test_unreadable_npy_is_wrapped(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b"not numpy")
    with pytest.raises(InputError, match=r"could not read .*broken\.npy' as a \.npy array"):
        load_image(path)


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="object arrays are refused"):
        load_image(path)


# ----------------------------------------------------------------------------- real data


def test_real_srtio3_hdf5_loads_as_stored_with_its_pixel_size():
    path = shared_data_file("SrTiO3_ADF_cropped.hdf5")
    with pytest.warns(UserWarning, match="no units; assumed nm"):
        image = load_image(path)
    assert image.array.shape == (400, 380)  # as stored: 400 rows, 380 columns
    assert image.array.dtype == np.float64
    assert image.pixel_size_pm == pytest.approx(9.33, abs=0.01)


def test_real_pbtio3_positions_load_without_sublattice():
    positions = load_positions(shared_data_file("PbTiO3_junction_column_positions.npy"))
    assert positions.xy.shape == (6731, 2)
    assert positions.sublattice is None
    assert np.isfinite(positions.xy).all()


# ----------------------------------------------------------------------------- positions


def test_npy_positions_with_two_columns(tmp_path):
    xy = np.random.default_rng(0).uniform(0, 100, size=(20, 2))
    np.save(tmp_path / "xy.npy", xy)
    positions = load_positions(tmp_path / "xy.npy")
    assert isinstance(positions, PositionsData)
    np.testing.assert_array_equal(positions.xy, xy)
    assert positions.sublattice is None
    assert positions.source == str(tmp_path / "xy.npy")


def test_npy_positions_third_column_is_sublattice(tmp_path):
    table = np.column_stack([np.arange(12.0), np.arange(12.0) * 2, np.arange(12) % 2])
    np.save(tmp_path / "xys.npy", table)
    positions = load_positions(tmp_path / "xys.npy")
    np.testing.assert_array_equal(positions.xy, table[:, :2])
    assert positions.sublattice.dtype == np.dtype("<U1")
    assert list(positions.sublattice) == ["A", "B"] * 6


def test_npy_positions_wrong_columns(tmp_path):
    np.save(tmp_path / "four.npy", np.zeros((12, 4)))
    with pytest.raises(InputError, match=r"shape \(12, 4\); expected \(N, 2\).*or \(N, 3\)"):
        load_positions(tmp_path / "four.npy")


def test_csv_with_header_in_any_order_and_letter_labels(tmp_path):
    labels = ["a", "B"] * 6
    lines, xy = positions_table(sublattice=labels)
    reordered = [",".join([y, s, x]) for x, y, s in (line.split(",") for line in lines)]
    path = write_text(tmp_path / "p.csv", "Y, Sublattice, X\n" + "\n".join(reordered) + "\n")

    positions = load_positions(path)

    np.testing.assert_array_equal(positions.xy, xy)
    assert list(positions.sublattice) == ["A", "B"] * 6


def test_txt_whitespace_without_header_with_comments_and_numeric_labels(tmp_path):
    lines, xy = positions_table(sublattice=["0", "1"] * 6, delimiter="\t ")
    path = write_text(tmp_path / "p.txt", "# refined columns\n\n" + "\n".join(lines))

    positions = load_positions(path)

    np.testing.assert_array_equal(positions.xy, xy)
    assert list(positions.sublattice) == ["A", "B"] * 6


def test_txt_two_columns_gives_no_sublattice(tmp_path):
    lines, xy = positions_table()
    positions = load_positions(write_text(tmp_path / "p.txt", "\n".join(lines)))
    np.testing.assert_array_equal(positions.xy, xy)
    assert positions.sublattice is None


def test_text_with_too_many_columns(tmp_path):
    path = write_text(tmp_path / "p.csv", "\n".join("1,2,0,7" for _ in range(12)))
    with pytest.raises(InputError, match=r"line 1 has 4 columns; expected 2 \(x, y\) or 3"):
        load_positions(path)


def test_text_with_a_short_row(tmp_path):
    lines, _ = positions_table(sublattice=["A"] * 12)
    lines[3] = "1.0,2.0"
    path = write_text(tmp_path / "p.csv", "x,y,sublattice\n" + "\n".join(lines))
    with pytest.raises(InputError, match=r"line 5 has 2 fields; expected 3 \(x, y, sublattice\)"):
        load_positions(path)


def test_text_with_unknown_header(tmp_path):
    lines, _ = positions_table()
    path = write_text(tmp_path / "p.csv", "x,intensity\n" + "\n".join(lines))
    with pytest.raises(InputError, match=r"header \(line 1\) names columns \['x', 'intensity'\]"):
        load_positions(path)


def test_text_with_non_numeric_coordinates(tmp_path):
    lines, _ = positions_table()
    lines[2] = "abc,4.0"
    path = write_text(tmp_path / "p.csv", "x,y\n" + "\n".join(lines))
    with pytest.raises(InputError, match=r"column 'x' has 1 non-numeric value: 'abc' \(line 4\)"):
        load_positions(path)


def test_text_with_nan_coordinates(tmp_path):
    lines, _ = positions_table()
    lines[0], lines[5] = "nan,1.0", "2.0,inf"
    path = write_text(tmp_path / "p.txt", "\n".join(lines))
    with pytest.raises(InputError, match=r"2 positions with NaN or infinite coordinates out of 12"):
        load_positions(path)


def test_too_few_positions(tmp_path):
    lines, _ = positions_table(n=5)
    path = write_text(tmp_path / "p.csv", "\n".join(lines))
    assert MIN_POSITIONS == 10
    with pytest.raises(InputError, match=r"holds 5 positions; at least MIN_POSITIONS = 10"):
        load_positions(path)


def test_empty_table_has_zero_positions(tmp_path):
    path = write_text(tmp_path / "p.csv", "x,y\n")
    with pytest.raises(InputError, match=r"holds 0 positions"):
        load_positions(path)


def test_unknown_sublattice_values_are_listed(tmp_path):
    lines, _ = positions_table(sublattice=["A", "C", "x", "B"] * 3)
    path = write_text(tmp_path / "p.csv", "\n".join(lines))
    with pytest.raises(InputError, match=r"unknown sublattice values \['C', 'x'\]"):
        load_positions(path)


def test_negative_coordinates_are_allowed():
    xy = np.column_stack([np.arange(10.0) - 5, -np.arange(10.0)])
    np.testing.assert_array_equal(validate_positions(xy).xy, xy)


def test_validate_positions_accepts_lists_and_copies():
    xy = np.arange(24.0).reshape(12, 2)
    positions = validate_positions(xy.tolist(), sublattice=[0, 1] * 6, source="list")
    assert positions.source == "list"
    assert list(positions.sublattice) == ["A", "B"] * 6
    positions.xy[0, 0] = -1.0
    assert xy[0, 0] == 0.0


@pytest.mark.parametrize(("xy", "match"), [
    (np.full((12, 2), "1"), r"non-numeric coordinates \(dtype <U1\)"),
    (np.zeros((12, 3)), r"shape \(12, 3\); expected \(N, 2\)"),
    (np.zeros(24), r"shape \(24,\); expected \(N, 2\)"),
])
def test_validate_positions_refuses_bad_coordinates(xy, match):
    with pytest.raises(InputError, match=match):
        validate_positions(xy)


def test_validate_positions_refuses_sublattice_of_wrong_length():
    with pytest.raises(InputError, match=r"sublattice has shape \(11,\) but there are 12"):
        validate_positions(np.zeros((12, 2)), sublattice=["A"] * 11)


def test_validate_positions_refuses_nan_sublattice():
    with pytest.raises(InputError, match=r"unknown sublattice values \['nan'\]"):
        validate_positions(np.zeros((12, 2)), sublattice=np.r_[np.zeros(11), np.nan])


@settings(max_examples=25, deadline=None)
@given(
    xy=arrays(np.float64, st.tuples(st.integers(MIN_POSITIONS, 40), st.just(2)),
              elements=st.floats(-1e5, 1e5)),
    delimiter=st.sampled_from([",", " ", "\t"]),
)
def test_text_round_trip_is_exact(xy, delimiter):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.txt"
        np.savetxt(path, xy, delimiter=delimiter, fmt="%.17g", header="x y", comments="")
        np.testing.assert_array_equal(load_positions(path).xy, xy)
