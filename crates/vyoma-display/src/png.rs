//! Screenshots: frames as PNG files (8-bit RGB), and back, for golden-image tests.

use crate::{Frame, Size};

/// Why a PNG could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    /// Encoding failed.
    #[error("cannot encode PNG: {0}")]
    Encode(#[from] png::EncodingError),
    /// Decoding failed.
    #[error("cannot decode PNG: {0}")]
    Decode(#[from] png::DecodingError),
    /// Not 8-bit RGB or RGBA.
    #[error("PNG is {0}, not 8-bit RGB or RGBA")]
    Format(String),
}

/// `frame` as a PNG file.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, PngError> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, frame.size.w, frame.size.h);
    e.set_color(png::ColorType::Rgb);
    e.set_depth(png::BitDepth::Eight);
    let mut w = e.write_header()?;
    let rgb: Vec<u8> = frame
        .pixels
        .iter()
        .flat_map(|p| [(p >> 16) as u8, (p >> 8) as u8, *p as u8])
        .collect();
    w.write_image_data(&rgb)?;
    w.finish()?;
    Ok(out)
}

/// A PNG file (8-bit RGB or RGBA; alpha ignored) as a frame.
pub fn decode(bytes: &[u8]) -> Result<Frame, PngError> {
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
    let mut buf = vec![
        0;
        r.output_buffer_size()
            .ok_or_else(|| PngError::Format("too large".into()))?
    ];
    let info = r.next_frame(&mut buf)?;
    let step = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        (c, d) => return Err(PngError::Format(format!("{c:?} at {d:?}"))),
    };
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32)
        .collect();
    Ok(Frame {
        size: Size::new(info.width, info.height),
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_survives_the_round_trip() {
        let mut f = Frame::new(Size::new(3, 2), 0x0012_3456);
        f.pixels[4] = 0x00ff_0001;
        let back = decode(&encode(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(decode(b"not a png").is_err());
    }
}
