from django.http import HttpResponse
from django.urls import path


def index(request):
    return HttpResponse("<h1>Hello from Django behind pyfront</h1>"
                        "<link rel='stylesheet' href='/static/site.css'>")


urlpatterns = [path("", index)]
