import io

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
from PIL import Image

from avpretrain.data.loading.video import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    choose_frame_index,
    decode_jpeg,
    frame_transform,
    frames_to_clip,
)


def smooth_image(h: int = 48, w: int = 64) -> np.ndarray:
    """[H, W, 3] uint8 gradient with distinct channels (smooth, so JPEG error stays small)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], axis=-1).astype(
        np.uint8
    )


def jpeg(array: np.ndarray, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def normalised(t: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return (t - mean[:, None, None]) / std[:, None, None]


def test_decode_jpeg_matches_pil() -> None:
    data = jpeg(smooth_image())
    ours = decode_jpeg(data)
    assert ours.shape == (3, 48, 64) and ours.dtype == torch.uint8
    pil = torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
    assert (ours.int() - pil.int()).abs().max() <= 3  # decoders may differ in IDCT / upsampling


def test_decode_jpeg_grey_and_corrupt() -> None:
    grey = decode_jpeg(jpeg(smooth_image(), mode="L"))
    assert grey.shape == (3, 48, 64) and torch.equal(grey[0], grey[2])
    with pytest.raises(ValueError, match="could not decode JPEG"):
        decode_jpeg(b"not a jpeg at all")


def test_eval_transform_of_uniform_grey() -> None:
    img = torch.full((3, 240, 320), 124, dtype=torch.uint8)
    out = frame_transform(img, size=224)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    expected = normalised(torch.full((3, 224, 224), 124 / 255))
    torch.testing.assert_close(out, expected)


def test_eval_transform_matches_torchvision_pipeline() -> None:
    img = torch.from_numpy(smooth_image(60, 90)).permute(2, 0, 1).contiguous()
    reference = T.Compose(
        [
            T.Resize(32, antialias=True),
            T.CenterCrop(32),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    torch.testing.assert_close(frame_transform(img, size=32), reference(img))


def test_train_transform_matches_torchvision_draws_and_is_seedable() -> None:
    img = torch.from_numpy(smooth_image(60, 90)).permute(2, 0, 1).contiguous()
    reference = T.Compose(
        [
            T.RandomResizedCrop(32, scale=(0.5, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    for seed in range(4):
        torch.manual_seed(seed)
        expected = reference(img)
        torch.manual_seed(seed)
        torch.testing.assert_close(frame_transform(img, 32, train=True), expected)
    a = frame_transform(img, 32, train=True, generator=torch.Generator().manual_seed(9))
    b = frame_transform(img, 32, train=True, generator=torch.Generator().manual_seed(9))
    c = frame_transform(img, 32, train=True, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_choose_frame_index() -> None:
    assert [choose_frame_index(n, train=False) for n in (1, 9, 10)] == [0, 4, 5]
    g = torch.Generator().manual_seed(0)
    draws = {choose_frame_index(10, train=True, generator=g) for _ in range(200)}
    assert draws == set(range(10))
    with pytest.raises(ValueError):
        choose_frame_index(0, train=False)


def test_frames_to_clip_shares_one_crop() -> None:
    frame = torch.from_numpy(smooth_image()).permute(2, 0, 1).contiguous()
    other = frame.flip(-1)
    clip = frames_to_clip([frame, other, frame], size=16, train=True, generator=torch.Generator())
    assert clip.shape == (3, 3, 16, 16)
    assert torch.equal(clip[:, 0], clip[:, 2])  # same frame, same crop and flip
    evaluated = frames_to_clip([frame, other], size=16)
    torch.testing.assert_close(evaluated[:, 1], frame_transform(other, size=16))
