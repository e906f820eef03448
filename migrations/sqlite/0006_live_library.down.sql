DROP TABLE now_playing;
DROP TABLE library_events;
DROP TABLE library_event_heads;
