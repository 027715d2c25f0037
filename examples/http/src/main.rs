//! A std-only HTTP/1.1 server: each request is answered inside `hotline::call`, so an
//! edited handler answers the next request while the listener and open connections live on.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

fn handle(path: &str) -> String {
    format!("hello from {path}\n")
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut header = String::new();
        while reader.read_line(&mut header)? > 2 {
            header.clear();
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
        let body = hotline::call(|| handle(&path));
        write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}", body.len(), body)?;
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7878".into());
    let listener = TcpListener::bind(&addr).expect("cannot bind");
    println!("listening on http://{}", listener.local_addr().expect("no local address"));
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}
