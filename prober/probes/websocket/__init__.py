"""The `websocket` check type: batches of raw WebSocket or Socket.IO connections."""
