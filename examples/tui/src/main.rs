//! A ratatui terminal UI whose draw function runs inside `hotline::call`: edit `draw` and
//! save, and the next frame is drawn by the new code. Press q to quit. Without a terminal
//! (in tests) it renders into ratatui's TestBackend and prints each frame as one line.
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::{Frame, Terminal};
use std::io::IsTerminal;
use std::time::Duration;

struct State {
    ticks: u64,
}

fn draw(frame: &mut Frame, state: &State) {
    let text = format!("ticks: {}", state.ticks);
    let block = Block::default().title("hotline").borders(Borders::ALL);
    frame.render_widget(Paragraph::new(text).block(block), frame.area());
}

fn main() {
    let mut state = State { ticks: 0 };
    if std::io::stdout().is_terminal() {
        let mut terminal = ratatui::init();
        loop {
            state.ticks += 1;
            terminal.draw(|f| hotline::call(|| draw(f, &state))).expect("draw failed");
            if event::poll(Duration::from_millis(100)).unwrap_or(false) {
                if let Ok(Event::Key(key)) = event::read() {
                    if key.code == KeyCode::Char('q') {
                        break;
                    }
                }
            }
        }
        ratatui::restore();
    } else {
        let mut terminal = Terminal::new(TestBackend::new(24, 3)).expect("no test backend");
        loop {
            state.ticks += 1;
            terminal.draw(|f| hotline::call(|| draw(f, &state))).expect("draw failed");
            let buffer = terminal.backend().buffer();
            let rows: Vec<String> = (0..buffer.area.height)
                .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect())
                .collect();
            println!("{}", rows.join("/"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
