//! A headless Bevy app (MinimalPlugins, a ScheduleRunnerPlugin loop at 20 frames a second),
//! as a user writes it: no Hotline dependency, no attribute. Edit a system and save: the next
//! frame runs the new body, with the world's entities and resources carried on.
//!
//! It prints one line a frame, read by the tests (tests/test_bevy.py):
//! `frame=N score=S sum_x=X spread=Y label=L`.
use bevy::app::ScheduleRunnerPlugin;
use bevy::diagnostic::FrameCount;
use bevy::prelude::*;
use std::time::Duration;

/// How many bodies `spawn_bodies` spawns at start-up.
const BODIES: i64 = 64;

#[derive(Component)]
struct Position {
    x: i64,
    y: i64,
}

#[derive(Component)]
struct Velocity {
    x: i64,
}

#[derive(Resource, Default)]
struct Score {
    points: u64,
}

#[derive(Event)]
struct Scored {
    points: u64,
}

/// Startup: runs once, before the first frame.
fn spawn_bodies(mut commands: Commands) {
    for _ in 0..BODIES {
        commands.spawn((Position { x: 0, y: 0 }, Velocity { x: 1 }));
    }
    println!("startup bodies={BODIES}");
}

/// Update: moves every body on the task pool's threads.
fn move_bodies(mut bodies: Query<(&mut Position, &Velocity)>) {
    bodies.par_iter_mut().for_each(|(mut position, velocity)| {
        position.x += velocity.x;
        position.y = velocity.x;
    });
}

/// Update: every 4th frame, triggers `Scored` (observed by `on_scored`).
fn award(mut commands: Commands, frame: Res<FrameCount>) {
    if frame.0 % 4 == 0 {
        commands.trigger(Scored { points: 1 });
    }
}

/// Observer of `Scored`.
fn on_scored(scored: On<Scored>, mut score: ResMut<Score>) {
    score.points += scored.points;
}

/// Update: one line a frame.
fn report(frame: Res<FrameCount>, score: Res<Score>, bodies: Query<&Position>) {
    let sum_x: i64 = bodies.iter().map(|p| p.x).sum();
    let spread: i64 = bodies.iter().map(|p| p.y).sum();
    println!("frame={} score={} sum_x={sum_x} spread={spread} label=tick", frame.0, score.points);
}

fn main() {
    App::new()
        .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_loop(Duration::from_millis(50))))
        .init_resource::<Score>()
        .add_systems(Startup, spawn_bodies)
        .add_systems(Update, (move_bodies, award, report.after(move_bodies)))
        .add_observer(on_scored)
        .run();
}
