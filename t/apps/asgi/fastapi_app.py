"""A FastAPI app for t/asgi.t: JSON, a path parameter, a validated body."""
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str = None):
    if item_id == 404:
        raise HTTPException(status_code=404, detail="no such item")
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price": item.price, "total": item.price * 2}
