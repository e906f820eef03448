DROP TABLE liked_tracks;
DROP TABLE play_requests;
DROP TABLE plays;
