from collections.abc import Generator, Mapping
from typing import Any

from dify_plugin.entities.datasource import WebSiteInfo, WebSiteInfoDetail, WebsiteCrawlMessage
from dify_plugin.interfaces.datasource.website import WebsiteCrawlDatasource


class {{class}}Datasource(WebsiteCrawlDatasource):
    """A website-crawl datasource that reports one placeholder page; fetch the real page here."""

    def _get_website_crawl(
        self, datasource_parameters: Mapping[str, Any]
    ) -> Generator[WebsiteCrawlMessage, None, None]:
        url = str(datasource_parameters.get("url", ""))
        yield self.create_crawl_message(WebSiteInfo(status="processing", web_info_list=[], total=1, completed=0))
        page = WebSiteInfoDetail(source_url=url, title=url, description="", content=f"content of {url}")
        yield self.create_crawl_message(WebSiteInfo(status="completed", web_info_list=[page], total=1, completed=1))
