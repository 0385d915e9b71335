//! Session tests: bounded line reading.

use super::*;

async fn read_all(input: &[u8], max: usize) -> Vec<Input> {
    let mut r = LineReader::new(input, max);
    let mut out = Vec::new();
    while let Some(l) = r.next_line().await.unwrap() {
        out.push(l);
    }
    out
}

#[tokio::test]
async fn lines_are_bounded_while_they_are_read() {
    let mut input = b"ps\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend(b"\nhelp\n\xff\xfe\nlast");
    assert_eq!(
        read_all(&input, 64).await,
        vec![
            Input::Line("ps".into()),
            Input::TooLong(10_000),
            Input::Line("help".into()),
            Input::NotUtf8,
            Input::Line("last".into()),
        ]
    );
    // Exactly at the limit is fine.
    assert_eq!(read_all(&[b'y'; 64], 64).await, vec![Input::Line("y".repeat(64))]);
}

#[tokio::test]
async fn an_endless_line_holds_at_most_the_limit() {
    // A reader that yields 1 MiB chunks without a newline: what it holds stays bounded.
    let chunk = vec![b'z'; 1 << 20];
    let src = tokio::io::BufReader::with_capacity(1 << 20, std::io::Cursor::new(chunk.repeat(8)));
    let mut r = LineReader::new(src, MAX_LINE);
    let got = r.next_line().await.unwrap();
    assert_eq!(got, Some(Input::TooLong(8 << 20)));
    assert_eq!(r.held(), 0);
    // Mid-line (the newline never comes), what is held never exceeds the limit: the writer
    // can only finish once the reader has taken almost all of its megabyte.
    let (mut w, rd) = tokio::io::duplex(1 << 16);
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut w, &vec![b'z'; 1 << 20])
            .await
            .unwrap();
        w
    });
    let mut r = LineReader::new(tokio::io::BufReader::new(rd), MAX_LINE);
    let _w = tokio::select! {
        l = r.next_line() => panic!("no line ended, yet got {l:?}"),
        w = writer => w.unwrap(),
    };
    assert!(r.held() <= MAX_LINE, "held {} bytes", r.held());
}
