"""A small Flask app for `pyfront serve examples/flask`."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "<h1>Hello from Flask behind pyfront</h1><p><a href='/api/echo?x=1'>/api/echo</a></p>"


@app.get("/api/echo")
def echo():
    return jsonify(path=request.path, args=request.args, request_id=request.headers.get("X-Request-Id"))
