//! ecs adapter (in progress).
